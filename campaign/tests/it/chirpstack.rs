//! `campaign push` of a group WAKE to ChirpStack v4: a real gRPC exchange
//! with an in-test `MulticastGroupService` (tonic) on an ephemeral port,
//! which records what it was asked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chirpstack_api::api::multicast_group_service_server::{
    MulticastGroupService, MulticastGroupServiceServer,
};
use chirpstack_api::api::*;
use chirpstack_api::tonic::transport::Server;
use chirpstack_api::tonic::transport::server::TcpIncoming;
use chirpstack_api::tonic::{self, Request, Response, Status};
use otavan_campaign::chirpstack::ApiConfig;
use otavan_campaign::deveui::DevEui;
use otavan_campaign::groups_csv::{GroupKeys, GroupRow};
use otavan_campaign::mqtt::NetworkServer;
use otavan_campaign::progress::{self, Progress};
use otavan_campaign::push::{Downlink, PushConfig, push_downlinks};
use otavan_protocol::lora::Wake;
use otavan_protocol::region::Region;
use time::OffsetDateTime;

use crate::broker::Mosquitto;

/// What the service was asked, in order.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    List(String),
    Create(MulticastGroup),
    AddDevice(String, String),
    AddGateway(String, String),
    Enqueue(MulticastGroupQueueItem),
}

#[derive(Default, Clone)]
struct Recorder {
    calls: Arc<Mutex<Vec<Call>>>,
    tokens: Arc<Mutex<Vec<String>>>,
    /// The groups created, as List finds them.
    created: Arc<Mutex<Vec<MulticastGroup>>>,
}

impl Recorder {
    fn note<T>(&self, request: &Request<T>, call: Call) -> Result<(), Status> {
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        self.tokens.lock().unwrap().push(token.clone());
        if token != "Bearer secret-key" {
            return Err(Status::unauthenticated("bad API key"));
        }
        self.calls.lock().unwrap().push(call);
        Ok(())
    }
}

const GROUP_ID: &str = "6a1f7e1c-0000-4000-8000-000000000001";

#[tonic::async_trait]
impl MulticastGroupService for Recorder {
    async fn create(
        &self,
        r: Request<CreateMulticastGroupRequest>,
    ) -> Result<Response<CreateMulticastGroupResponse>, Status> {
        let group = r.get_ref().multicast_group.clone().unwrap_or_default();
        self.note(&r, Call::Create(group.clone()))?;
        self.created.lock().unwrap().push(MulticastGroup {
            id: GROUP_ID.into(),
            ..group
        });
        Ok(Response::new(CreateMulticastGroupResponse {
            id: GROUP_ID.into(),
        }))
    }
    async fn add_device(
        &self,
        r: Request<AddDeviceToMulticastGroupRequest>,
    ) -> Result<Response<()>, Status> {
        let call = Call::AddDevice(
            r.get_ref().multicast_group_id.clone(),
            r.get_ref().dev_eui.clone(),
        );
        self.note(&r, call)?;
        Ok(Response::new(()))
    }
    async fn add_gateway(
        &self,
        r: Request<AddGatewayToMulticastGroupRequest>,
    ) -> Result<Response<()>, Status> {
        let call = Call::AddGateway(
            r.get_ref().multicast_group_id.clone(),
            r.get_ref().gateway_id.clone(),
        );
        self.note(&r, call)?;
        Ok(Response::new(()))
    }
    async fn enqueue(
        &self,
        r: Request<EnqueueMulticastGroupQueueItemRequest>,
    ) -> Result<Response<EnqueueMulticastGroupQueueItemResponse>, Status> {
        let item = r.get_ref().queue_item.clone().unwrap_or_default();
        self.note(&r, Call::Enqueue(item))?;
        Ok(Response::new(EnqueueMulticastGroupQueueItemResponse {
            f_cnt: 1,
        }))
    }
    async fn get(
        &self,
        _: Request<GetMulticastGroupRequest>,
    ) -> Result<Response<GetMulticastGroupResponse>, Status> {
        Err(Status::unimplemented("get"))
    }
    async fn update(
        &self,
        _: Request<UpdateMulticastGroupRequest>,
    ) -> Result<Response<()>, Status> {
        Err(Status::unimplemented("update"))
    }
    async fn delete(
        &self,
        _: Request<DeleteMulticastGroupRequest>,
    ) -> Result<Response<()>, Status> {
        Err(Status::unimplemented("delete"))
    }
    async fn list(
        &self,
        r: Request<ListMulticastGroupsRequest>,
    ) -> Result<Response<ListMulticastGroupsResponse>, Status> {
        let search = r.get_ref().search.clone();
        self.note(&r, Call::List(search.clone()))?;
        let result: Vec<MulticastGroupListItem> = self
            .created
            .lock()
            .unwrap()
            .iter()
            .filter(|g| g.name.contains(&search))
            .map(|g| MulticastGroupListItem {
                id: g.id.clone(),
                name: g.name.clone(),
                ..Default::default()
            })
            .collect();
        Ok(Response::new(ListMulticastGroupsResponse {
            total_count: result.len() as u32,
            result,
        }))
    }
    async fn remove_device(
        &self,
        _: Request<RemoveDeviceFromMulticastGroupRequest>,
    ) -> Result<Response<()>, Status> {
        Err(Status::unimplemented("remove_device"))
    }
    async fn remove_gateway(
        &self,
        _: Request<RemoveGatewayFromMulticastGroupRequest>,
    ) -> Result<Response<()>, Status> {
        Err(Status::unimplemented("remove_gateway"))
    }
    async fn flush_queue(
        &self,
        _: Request<FlushMulticastGroupQueueRequest>,
    ) -> Result<Response<()>, Status> {
        Err(Status::unimplemented("flush_queue"))
    }
    async fn list_queue(
        &self,
        _: Request<ListMulticastGroupQueueRequest>,
    ) -> Result<Response<ListMulticastGroupQueueResponse>, Status> {
        Err(Status::unimplemented("list_queue"))
    }
}

/// Starts the service on an ephemeral port; returns its URL.
async fn serve(recorder: Recorder) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        Server::builder()
            .add_service(MulticastGroupServiceServer::new(recorder))
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    url
}

fn member(i: u8) -> DevEui {
    DevEui([0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0, 2, i])
}

fn rows(transmit_at: OffsetDateTime) -> Vec<GroupRow> {
    let mut rows: Vec<GroupRow> = (0..2u8)
        .map(|i| GroupRow::Setup {
            mc_addr: 0x0170_7000,
            dev_eui: member(i),
            enqueue_at: transmit_at - Duration::from_secs(3600),
            send_by: transmit_at - Duration::from_secs(1800),
            fport: 201,
            frame: vec![0x02],
        })
        .collect();
    rows.push(GroupRow::Wake {
        mc_addr: 0x0170_7000,
        enqueue_at: transmit_at - Duration::from_secs(1800),
        send_by: transmit_at - Duration::from_secs(30),
        transmit_at,
        fport: 200,
        wake: Wake::new(
            7,
            Duration::from_secs(60),
            Duration::from_secs(600),
            0,
            None,
        )
        .unwrap(),
    });
    rows
}

async fn push_group(
    url: String,
    token: &str,
    broker: &Mosquitto,
    dir: &std::path::Path,
) -> Result<otavan_campaign::push::PushSummary, otavan_campaign::push::PushError> {
    let server = NetworkServer::chirpstack("app-1").unwrap();
    let transmit_at = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let keys = GroupKeys::new(0x0170_7000, [0x5a; 16]);
    let all = Downlink::group_rows(
        &rows(transmit_at),
        &server,
        &["0016c001f153a14c".into()],
        &HashMap::from([(0x0170_7000, keys)]),
        Region::Eu868,
    )
    .unwrap();
    // The setups are long past: only the group WAKE, due now.
    let group: Vec<Downlink> = all.into_iter().filter(|d| d.grpc.is_some()).collect();
    assert_eq!(group.len(), 1);
    assert_eq!(group[0].enqueue_at, transmit_at);
    let config = PushConfig {
        broker: broker.url().parse().unwrap(),
        server,
        client_id: "otavan-push-cs".into(),
        max_late: Duration::from_secs(60),
        ack_timeout: Duration::from_secs(5),
        chirpstack_api: Some(ApiConfig {
            url,
            token: token.into(),
            application_id: "app-1".into(),
            gateways: vec!["0016c001f153a14c".into()],
        }),
    };
    let path = dir.join("GROUPS.csv");
    let mut progress = Progress::open(&progress::path_for(&path), "d").unwrap();
    push_downlinks(&group, &mut progress, &config, &mut |_| {}).await
}

#[tokio::test]
async fn a_group_wake_creates_the_group_adds_members_and_gateways_and_enqueues() {
    let broker = Mosquitto::start();
    let recorder = Recorder::default();
    let url = serve(recorder.clone()).await;
    let dir = tempfile::TempDir::new().unwrap();
    let summary = push_group(url.clone(), "secret-key", &broker, dir.path())
        .await
        .unwrap();
    assert_eq!((summary.sent, summary.skipped.len()), (1, 0));
    let calls = recorder.calls.lock().unwrap().clone();
    let keys = GroupKeys::new(0x0170_7000, [0x5a; 16]);
    let Call::Create(group) = &calls[0] else {
        panic!("{calls:?}")
    };
    assert_eq!(group.name, "otavan-01707000");
    assert_eq!(group.application_id, "app-1");
    assert_eq!(group.mc_addr, "01707000");
    assert_eq!(group.mc_app_s_key, hex::encode(keys.session.app_s_key));
    assert_eq!(group.mc_nwk_s_key, hex::encode(keys.session.nwk_s_key));
    assert_eq!(
        (group.frequency, group.dr, group.f_cnt),
        (869_525_000, 0, 1)
    );
    assert_eq!(group.group_type, MulticastGroupType::ClassC as i32);
    assert_eq!(
        calls[1..4],
        [
            Call::AddDevice(GROUP_ID.into(), member(0).lower()),
            Call::AddDevice(GROUP_ID.into(), member(1).lower()),
            Call::AddGateway(GROUP_ID.into(), "0016c001f153a14c".into()),
        ]
    );
    let Call::Enqueue(item) = &calls[4] else {
        panic!("{calls:?}")
    };
    assert_eq!(item.multicast_group_id, GROUP_ID);
    assert_eq!(item.f_port, 200);
    assert_eq!(Wake::decode(&item.data).unwrap().campaign, 7);
    assert!(item.expires_at.is_some());
    assert_eq!(calls.len(), 5);
    // The progress file has it: pushed again, nothing is called.
    let again = push_group(url, "secret-key", &broker, dir.path())
        .await
        .unwrap();
    assert_eq!((again.sent, again.already_sent), (0, 1));
    assert_eq!(recorder.calls.lock().unwrap().len(), 5);
}

#[tokio::test]
async fn a_refused_api_key_stops_the_push_with_the_reason() {
    let broker = Mosquitto::start();
    let recorder = Recorder::default();
    let url = serve(recorder.clone()).await;
    let dir = tempfile::TempDir::new().unwrap();
    let error = push_group(url, "wrong", &broker, dir.path())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("refused") && error.contains("bad API key"),
        "{error}"
    );
    assert_eq!(recorder.tokens.lock().unwrap().as_slice(), ["Bearer wrong"]);
    assert!(recorder.calls.lock().unwrap().is_empty());
}

/// A standing group's slot WAKE in two campaigns, each with its own
/// GROUPS.csv and progress: the group is created (with its members, the
/// one set up now and the one already standing, and the gateway) at the
/// first and only found by name at the second.
#[tokio::test]
async fn a_standing_group_is_created_once_and_found_at_the_next_campaign() {
    let broker = Mosquitto::start();
    let recorder = Recorder::default();
    let url = serve(recorder.clone()).await;
    let server = NetworkServer::chirpstack("app-1").unwrap();
    let keys = HashMap::from([(0x0180_0000, GroupKeys::new(0x0180_0000, [0x5a; 16]))]);
    let config = PushConfig {
        broker: broker.url().parse().unwrap(),
        server: server.clone(),
        client_id: "otavan-push-cs-standing".into(),
        max_late: Duration::from_secs(60),
        ack_timeout: Duration::from_secs(5),
        chirpstack_api: Some(ApiConfig {
            url,
            token: "secret-key".into(),
            application_id: "app-1".into(),
            gateways: vec!["0016c001f153a14c".into()],
        }),
    };
    for campaign in 0..2 {
        let transmit_at = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let slot_s = (transmit_at.unix_timestamp() - 2).rem_euclid(86_400) as u32;
        let rows = [
            GroupRow::Member {
                mc_addr: 0x0180_0000,
                dev_eui: member(0),
                slot_s,
            },
            GroupRow::Member {
                mc_addr: 0x0180_0000,
                dev_eui: member(1),
                slot_s,
            },
            GroupRow::SlotWake {
                mc_addr: 0x0180_0000,
                slot_s,
                enqueue_at: transmit_at - Duration::from_secs(600),
                send_by: transmit_at - Duration::from_secs(30),
                transmit_at,
                fport: 200,
                wake: Wake::new(
                    8 + campaign,
                    Duration::from_secs(3600),
                    Duration::from_secs(600),
                    0,
                    None,
                )
                .unwrap(),
            },
        ];
        let downlinks = Downlink::group_rows(
            &rows,
            &server,
            &["0016c001f153a14c".into()],
            &keys,
            Region::Eu868,
        )
        .unwrap();
        // Queued at the slot's transmit time: ChirpStack sends at once.
        assert_eq!(downlinks.len(), 1);
        assert_eq!(downlinks[0].enqueue_at, transmit_at);
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("GROUPS.csv");
        let mut progress = Progress::open(&progress::path_for(&path), "d").unwrap();
        let summary = push_downlinks(&downlinks, &mut progress, &config, &mut |_| {})
            .await
            .unwrap();
        assert_eq!((summary.sent, summary.skipped.len()), (1, 0));
    }
    let calls = recorder.calls.lock().unwrap().clone();
    assert_eq!(calls[0], Call::List("otavan-01800000".into()));
    let Call::Create(group) = &calls[1] else {
        panic!("{calls:?}")
    };
    assert_eq!(group.mc_addr, "01800000");
    assert_eq!(group.group_type, MulticastGroupType::ClassC as i32);
    assert_eq!(
        calls[2..5],
        [
            Call::AddDevice(GROUP_ID.into(), member(0).lower()),
            Call::AddDevice(GROUP_ID.into(), member(1).lower()),
            Call::AddGateway(GROUP_ID.into(), "0016c001f153a14c".into()),
        ]
    );
    let Call::Enqueue(first) = &calls[5] else {
        panic!("{calls:?}")
    };
    assert_eq!(Wake::decode(&first.data).unwrap().campaign, 8);
    // The next campaign: found, not created again.
    assert_eq!(calls[6], Call::List("otavan-01800000".into()));
    let Call::Enqueue(second) = &calls[7] else {
        panic!("{calls:?}")
    };
    assert_eq!(second.multicast_group_id, GROUP_ID);
    assert_eq!(Wake::decode(&second.data).unwrap().campaign, 9);
    assert_eq!(calls.len(), 8);
}
