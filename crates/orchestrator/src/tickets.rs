//! Where winning tickets go: a durable Redis stream (through the bus) that the redeemer reads,
//! one JSON [`WinningTicket`] per entry with everything `redeemWinningTicket` needs.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use livefarm_bus::JobBus;
use livefarm_pm::WinningTicket;

/// The stream winning tickets are appended to.
pub use livefarm_jobs::WINNING_TICKETS_STREAM;

pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Takes winning tickets for redemption.
pub trait WinningTicketSink: Send + Sync {
    fn queue(&self, ticket: WinningTicket) -> SinkFuture<'_>;
}

/// Appends to [`WINNING_TICKETS_STREAM`] on the bus (Redis in production: durable).
pub struct BusTicketSink {
    bus: Arc<dyn JobBus>,
}

impl BusTicketSink {
    pub fn new(bus: Arc<dyn JobBus>) -> BusTicketSink {
        BusTicketSink { bus }
    }
}

impl WinningTicketSink for BusTicketSink {
    fn queue(&self, ticket: WinningTicket) -> SinkFuture<'_> {
        Box::pin(async move {
            let payload = serde_json::to_vec(&ticket).map_err(|e| e.to_string())?;
            let headers = livefarm_jobs::winning_ticket_headers(
                &ticket.sender.to_string(),
                &ticket.ticket_hash,
            );
            self.bus
                .publish(WINNING_TICKETS_STREAM, &payload, &headers)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}

/// Keeps tickets in memory (tests, and off-chain runs where nothing is redeemed).
#[derive(Default)]
pub struct MemoryTicketSink {
    tickets: Mutex<Vec<WinningTicket>>,
}

impl MemoryTicketSink {
    /// Tickets queued so far.
    pub fn tickets(&self) -> Vec<WinningTicket> {
        self.tickets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl WinningTicketSink for MemoryTicketSink {
    fn queue(&self, ticket: WinningTicket) -> SinkFuture<'_> {
        self.tickets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(ticket);
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use livefarm_pm::{Address, Ticket, TicketExpirationParams, U256};

    fn winner(nonce: u32) -> WinningTicket {
        let ticket = Ticket {
            recipient: Address::from_slice_lenient(&[1; 20]),
            sender: Address::from_slice_lenient(&[2; 20]),
            face_value: U256::from(1000u64),
            win_prob: U256::MAX,
            sender_nonce: nonce,
            recipient_rand_hash: [3; 32],
            params_expiration_block: 140,
            price_per_pixel: livefarm_pm::Price::zero(),
            expiration_params: TicketExpirationParams {
                creation_round: 5,
                creation_round_block_hash: [4; 32],
            },
        };
        WinningTicket::new(&ticket, &[5; 65], U256::from(42u64), "abcd1234")
    }

    #[tokio::test]
    async fn winners_land_in_a_redis_stream_that_outlives_the_sink() {
        let (_server, bus) =
            livefarm_bus::testing::redis_bus(livefarm_bus::BusOptions::default()).await;
        let sink = BusTicketSink::new(Arc::clone(&bus));
        sink.queue(winner(1)).await.expect("queued");
        sink.queue(winner(2)).await.expect("queued");
        drop(sink);
        let entries = bus
            .range(WINNING_TICKETS_STREAM, None, 10)
            .await
            .expect("read back");
        let back: Vec<WinningTicket> = entries
            .iter()
            .map(|e| serde_json::from_slice(&e.payload).expect("json"))
            .collect();
        assert_eq!(back, vec![winner(1), winner(2)]);
        assert_eq!(
            entries[0].headers.get("ticket_hash").map(String::len),
            Some(64)
        );
    }
}
