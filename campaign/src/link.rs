//! One MQTT connection to the broker, opened afresh after every failure.
//!
//! rumqttc keeps unacknowledged publishes and resends them when its event
//! loop reconnects. `campaign push` decides itself what to resend (from
//! its progress file), so a [`Link`] that fails is dropped whole and a new
//! one connects with a clean session: nothing is resent behind its back.

use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, MqttOptions, Packet,
    Publish, QoS,
};

use crate::mqtt::Broker;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Keep-alive interval.
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// Why a connection failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The broker refused the credentials or the client: retrying will
    /// not help.
    #[error("the broker refused the connection ({0:?}): check the user name and password")]
    Refused(ConnectReturnCode),
    /// The connection failed or dropped; a retry may succeed.
    #[error("{0}")]
    Lost(String),
    /// No answer in time.
    #[error("no answer from the broker within {0:?}")]
    Timeout(Duration),
}

impl LinkError {
    /// Whether retrying cannot help.
    pub fn is_fatal(&self) -> bool {
        matches!(self, LinkError::Refused(_))
    }
}

impl From<ConnectionError> for LinkError {
    fn from(error: ConnectionError) -> LinkError {
        match error {
            ConnectionError::ConnectionRefused(code) => LinkError::Refused(code),
            other => LinkError::Lost(other.to_string()),
        }
    }
}

/// What the broker keeps of a client between connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session {
    /// Nothing: a publisher that tracks its own progress.
    Clean,
    /// Its subscriptions and the QoS 1 messages not yet acknowledged,
    /// which the client acknowledges itself ([`Link::ack`]) once it has
    /// handled them: a subscriber that must not miss a message.
    Persistent,
}

/// A connected client and its event loop.
pub struct Link {
    client: AsyncClient,
    events: EventLoop,
}

impl Link {
    /// Connects to `broker` as `client_id` and waits for the broker's
    /// CONNACK.
    ///
    /// # Errors
    ///
    /// [`LinkError`].
    pub async fn connect(
        broker: &Broker,
        client_id: &str,
        session: Session,
    ) -> Result<Link, LinkError> {
        let mut options = MqttOptions::new(client_id, broker.host.clone(), broker.port);
        options
            .set_keep_alive(KEEP_ALIVE)
            .set_clean_session(session == Session::Clean)
            .set_manual_acks(session == Session::Persistent);
        if let Some(user) = &broker.username {
            options.set_credentials(user.clone(), broker.password.clone().unwrap_or_default());
        }
        let (client, mut events) = AsyncClient::new(options, 16);
        events
            .network_options
            .set_connection_timeout(CONNECT_TIMEOUT.as_secs());
        let connected = tokio::time::timeout(CONNECT_TIMEOUT * 2, async {
            loop {
                if let Event::Incoming(Packet::ConnAck(_)) = events.poll().await? {
                    return Ok::<(), ConnectionError>(());
                }
            }
        })
        .await
        .map_err(|_| LinkError::Timeout(CONNECT_TIMEOUT * 2))?;
        connected?;
        Ok(Link { client, events })
    }

    /// Publishes `message` on `topic` at QoS 1 and waits for the PUBACK.
    ///
    /// # Errors
    ///
    /// [`LinkError`]: the link is then unusable.
    pub async fn publish_acked(
        &mut self,
        topic: &str,
        message: Vec<u8>,
        timeout: Duration,
    ) -> Result<(), LinkError> {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, message)
            .await
            .map_err(|e| LinkError::Lost(e.to_string()))?;
        tokio::time::timeout(timeout, async {
            loop {
                if let Event::Incoming(Packet::PubAck(_)) = self.events.poll().await? {
                    return Ok::<(), ConnectionError>(());
                }
            }
        })
        .await
        .map_err(|_| LinkError::Timeout(timeout))??;
        Ok(())
    }

    /// Subscribes to `filter` at QoS 1 (the SUBACK arrives through
    /// [`Link::next`]).
    ///
    /// # Errors
    ///
    /// [`LinkError::Lost`] when the event loop is gone.
    pub async fn subscribe(&self, filter: &str) -> Result<(), LinkError> {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .map_err(|e| LinkError::Lost(e.to_string()))
    }

    /// Acknowledges a message received in a [`Session::Persistent`]
    /// session.
    ///
    /// # Errors
    ///
    /// [`LinkError::Lost`] when the event loop is gone.
    pub async fn ack(&self, publish: &Publish) -> Result<(), LinkError> {
        self.client
            .ack(publish)
            .await
            .map_err(|e| LinkError::Lost(e.to_string()))
    }

    /// The next event from the broker (also keeps the connection alive).
    ///
    /// # Errors
    ///
    /// [`LinkError`]: the link is then unusable.
    pub async fn next(&mut self) -> Result<Event, LinkError> {
        Ok(self.events.poll().await?)
    }

    /// Says goodbye to the broker (best effort).
    pub async fn disconnect(mut self) {
        if self.client.disconnect().await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while self.events.poll().await.is_ok() {}
            })
            .await;
        }
    }
}
