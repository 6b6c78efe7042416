//! What a node sends and receives through: its radio.

use async_trait::async_trait;
use bytes::Bytes;
use lithos_core::binary::lan::LoraAddress;

/// A radio a node (or a gateway's DAC service) owns: it sends to an address, receives what
/// reaches its own, and can be tuned to another address (LoRa-DAC moves a node).
#[async_trait]
pub trait Air: Send + Sync + 'static {
    /// Sends one frame to `to`.
    async fn send(&self, to: LoraAddress, frame: &[u8]) -> Result<(), String>;
    /// The next frame received; `None` once the radio is gone.
    async fn recv(&mut self) -> Option<Bytes>;
    /// Tunes the radio to `address`.
    fn set_address(&self, address: LoraAddress);
    /// Tunes the radio to `address` and returns once frames sent there reach it (a radio
    /// whose tuning is immediate needs nothing more).
    async fn tune(&mut self, address: LoraAddress) -> Result<(), String> {
        self.set_address(address);
        Ok(())
    }
}

#[async_trait]
impl Air for lithos_lora_sim::Radio {
    async fn send(&self, to: LoraAddress, frame: &[u8]) -> Result<(), String> {
        lithos_lora_sim::Radio::send(self, to, frame)
            .await
            .map_err(|e| e.to_string())
    }

    async fn recv(&mut self) -> Option<Bytes> {
        lithos_lora_sim::Radio::recv(self).await
    }

    fn set_address(&self, address: LoraAddress) {
        lithos_lora_sim::Radio::set_address(self, address)
    }
}

#[async_trait]
impl Air for lithos_lora_sim::air::RemoteRadio {
    async fn send(&self, to: LoraAddress, frame: &[u8]) -> Result<(), String> {
        lithos_lora_sim::air::RemoteRadio::send(self, to, frame)
            .await
            .map_err(|e| e.to_string())
    }

    async fn recv(&mut self) -> Option<Bytes> {
        lithos_lora_sim::air::RemoteRadio::recv(self).await
    }

    fn set_address(&self, address: LoraAddress) {
        lithos_lora_sim::air::RemoteRadio::set_address(self, address)
    }

    async fn tune(&mut self, address: LoraAddress) -> Result<(), String> {
        lithos_lora_sim::air::RemoteRadio::tune(self, address)
            .await
            .map_err(|e| e.to_string())
    }
}
