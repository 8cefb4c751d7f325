//! The gRPC calls (built with the `chirpstack` feature: the
//! `chirpstack_api` crate compiles ChirpStack's protobuf definitions with
//! protoc).

use std::time::Duration;

use chirpstack_api::api::multicast_group_service_client::MulticastGroupServiceClient;
use chirpstack_api::api::{
    AddDeviceToMulticastGroupRequest, AddGatewayToMulticastGroupRequest,
    CreateMulticastGroupRequest, EnqueueMulticastGroupQueueItemRequest, ListMulticastGroupsRequest,
    MulticastGroup, MulticastGroupQueueItem, MulticastGroupSchedulingType, MulticastGroupType,
};
use chirpstack_api::common;
use chirpstack_api::tonic::metadata::{Ascii, MetadataValue};
use chirpstack_api::tonic::transport::{Channel, Endpoint};
use chirpstack_api::tonic::{Code, Request, Status};
use otavan_protocol::region::Region;

use super::{ApiConfig, ApiError, GroupWake};
use crate::multicast::FIRST_FCNT;

/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

impl From<Status> for ApiError {
    fn from(status: Status) -> ApiError {
        let message = format!("{:?}: {}", status.code(), status.message());
        match status.code() {
            Code::Unauthenticated
            | Code::PermissionDenied
            | Code::InvalidArgument
            | Code::NotFound => ApiError::Refused(message),
            _ => ApiError::Call(message),
        }
    }
}

/// Creates `wake`'s group with its members and gateways (a standing
/// group only when ChirpStack does not have it yet) and enqueues the
/// WAKE; returns the group's ID and the frame counter it went out with.
///
/// # Errors
///
/// [`ApiError`]: fatal when ChirpStack refuses the key or the request.
pub async fn send(config: &ApiConfig, wake: &GroupWake) -> Result<(String, u32), ApiError> {
    let endpoint = Endpoint::from_shared(config.url.clone())
        .map_err(|_| ApiError::Url(config.url.clone()))?
        .timeout(CALL_TIMEOUT)
        .connect_timeout(CALL_TIMEOUT);
    let channel: Channel = endpoint
        .connect()
        .await
        .map_err(|e| ApiError::Call(format!("cannot connect to {}: {e}", config.url)))?;
    let mut client = MulticastGroupServiceClient::new(channel);
    let bearer: MetadataValue<Ascii> = format!("Bearer {}", config.token)
        .parse()
        .map_err(|_| ApiError::Refused("the API key is not a header value".into()))?;
    let rx2 = wake.region.rx2();
    let addr = format!("{:08x}", wake.keys.mc_addr);
    let group = MulticastGroup {
        id: String::new(),
        name: format!("otavan-{addr}"),
        application_id: config.application_id.clone(),
        region: match wake.region {
            Region::Eu868 => common::Region::Eu868,
            Region::Us915 => common::Region::Us915,
        } as i32,
        mc_addr: addr,
        mc_nwk_s_key: hex::encode(wake.keys.session.nwk_s_key),
        mc_app_s_key: hex::encode(wake.keys.session.app_s_key),
        f_cnt: FIRST_FCNT,
        group_type: MulticastGroupType::ClassC as i32,
        dr: u32::from(wake.region.rx2_data_rate()),
        frequency: rx2.frequency,
        class_b_ping_slot_periodicity: 0,
        class_c_scheduling_type: MulticastGroupSchedulingType::Delay as i32,
    };
    let existing = if wake.standing {
        client
            .list(authorized(
                ListMulticastGroupsRequest {
                    limit: 100,
                    offset: 0,
                    search: group.name.clone(),
                    application_id: config.application_id.clone(),
                    dev_eui: String::new(),
                    tenant_id: String::new(),
                },
                &bearer,
            ))
            .await?
            .into_inner()
            .result
            .into_iter()
            .find(|g| g.name == group.name)
            .map(|g| g.id)
    } else {
        None
    };
    let id = match existing {
        Some(id) => id,
        None => create(&mut client, group, wake, config, &bearer).await?,
    };
    enqueue(&mut client, &id, wake, &bearer)
        .await
        .map(|f_cnt| (id, f_cnt))
}

/// Creates `group` with `wake`'s members and `config`'s gateways; returns
/// its ID.
async fn create(
    client: &mut MulticastGroupServiceClient<Channel>,
    group: MulticastGroup,
    wake: &GroupWake,
    config: &ApiConfig,
    bearer: &MetadataValue<Ascii>,
) -> Result<String, ApiError> {
    let id = client
        .create(authorized(
            CreateMulticastGroupRequest {
                multicast_group: Some(group),
            },
            bearer,
        ))
        .await?
        .into_inner()
        .id;
    for dev_eui in &wake.members {
        client
            .add_device(authorized(
                AddDeviceToMulticastGroupRequest {
                    multicast_group_id: id.clone(),
                    dev_eui: dev_eui.lower(),
                },
                bearer,
            ))
            .await?;
    }
    for gateway in &config.gateways {
        client
            .add_gateway(authorized(
                AddGatewayToMulticastGroupRequest {
                    multicast_group_id: id.clone(),
                    gateway_id: gateway.clone(),
                },
                bearer,
            ))
            .await?;
    }
    Ok(id)
}

/// Enqueues `wake` for group `id`; returns its frame counter.
async fn enqueue(
    client: &mut MulticastGroupServiceClient<Channel>,
    id: &str,
    wake: &GroupWake,
    bearer: &MetadataValue<Ascii>,
) -> Result<u32, ApiError> {
    let f_cnt = client
        .enqueue(authorized(
            EnqueueMulticastGroupQueueItemRequest {
                queue_item: Some(MulticastGroupQueueItem {
                    multicast_group_id: id.to_owned(),
                    f_cnt: 0,
                    f_port: u32::from(wake.fport),
                    data: wake.payload.clone(),
                    expires_at: Some(chirpstack_api::prost_types::Timestamp {
                        seconds: wake.expires_at.unix_timestamp(),
                        nanos: 0,
                    }),
                }),
            },
            bearer,
        ))
        .await?
        .into_inner()
        .f_cnt;
    Ok(f_cnt)
}

/// `message` with the API key as a bearer token.
fn authorized<T>(message: T, bearer: &MetadataValue<Ascii>) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", bearer.clone());
    request
}
