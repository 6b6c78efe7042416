//! The simulated air: who gets a frame, what loss and duplication do (the same for the
//! same seed), delays, the duty cycle, retuning, and a full receive buffer.

use std::time::Duration;

use lithos_lora_sim::{Address, Conditions, DutyCycle, MAX_FRAME, RadioError, RadioNetwork};

const DAC_CLIENT: Address = Address::new(0xEF, 0xEE, 0x1F);
const DAC_SERVICE: Address = Address::new(0xEF, 0xEF, 0x1F);

#[tokio::test]
async fn frames_reach_the_address_and_channel_named() {
    let net = RadioNetwork::new(1, Conditions::perfect());
    let gateway = net.radio(DAC_SERVICE);
    let mut client = net.radio(DAC_CLIENT);
    let mut other_channel = net.radio(Address::new(0xEF, 0xEE, 0x17));
    let mut node = net.radio(Address::new(0x00, 0x05, 0x1F));

    gateway
        .send(DAC_CLIENT, b"\xFF\xF8\x03\x09\xFF")
        .await
        .unwrap();
    assert_eq!(&client.recv().await.unwrap()[..], b"\xFF\xF8\x03\x09\xFF");
    assert!(other_channel.try_recv().is_none());
    assert!(node.try_recv().is_none());

    // Broadcast on channel 0x1F: every radio there but the sender.
    let mut gateway = gateway;
    gateway
        .send(Address::broadcast(0x1F), b"all")
        .await
        .unwrap();
    assert_eq!(&client.recv().await.unwrap()[..], b"all");
    assert_eq!(&node.recv().await.unwrap()[..], b"all");
    assert!(other_channel.try_recv().is_none());
    assert!(gateway.try_recv().is_none(), "a radio does not hear itself");

    assert_eq!(
        gateway.send(DAC_CLIENT, &[0xFF; MAX_FRAME + 1]).await,
        Err(RadioError::TooLong(MAX_FRAME + 1))
    );
    assert_eq!(gateway.send(DAC_CLIENT, &[]).await, Err(RadioError::Empty));
    gateway.send(DAC_CLIENT, &[0xFF; MAX_FRAME]).await.unwrap();
    assert_eq!(client.recv().await.unwrap().len(), MAX_FRAME);

    // A node configured by DAC moves to its allocated address.
    client.set_address(Address::new(0x00, 0x07, 0x17));
    assert_eq!(client.address(), Address::new(0x00, 0x07, 0x17));
    gateway.send(DAC_CLIENT, b"old").await.unwrap();
    gateway
        .send(Address::new(0x00, 0x07, 0x17), b"new")
        .await
        .unwrap();
    assert_eq!(&client.recv().await.unwrap()[..], b"new");
    let s = net.stats();
    assert_eq!((s.sent, s.lost, s.duplicated, s.overrun), (5, 0, 0, 0));
}

/// Which of `n` numbered frames one receiver got, in order, on a lossy network.
async fn fates(seed: u64, n: u32) -> (Vec<u32>, lithos_lora_sim::Stats) {
    let net = RadioNetwork::new(seed, Conditions::perfect().lossy(0.2, 0.05));
    let tx = net.radio(DAC_SERVICE);
    let mut rx = net.radio(DAC_CLIENT);
    let mut got = Vec::new();
    for i in 0..n {
        tx.send(DAC_CLIENT, &i.to_be_bytes()).await.unwrap();
        while let Some(f) = rx.try_recv() {
            got.push(u32::from_be_bytes(f[..4].try_into().unwrap()));
        }
    }
    (got, net.stats())
}

#[tokio::test]
async fn loss_and_duplication_follow_the_seed() {
    let (a, stats) = fates(42, 5_000).await;
    let (b, _) = fates(42, 5_000).await;
    let (c, _) = fates(43, 5_000).await;
    assert_eq!(a, b, "the same seed, the same fates");
    assert_ne!(a, c, "another seed, other fates");
    let lost = stats.lost as f64 / 5_000.0;
    let dup = stats.duplicated as f64 / (5_000 - stats.lost) as f64;
    assert!((0.18..0.22).contains(&lost), "{lost}");
    assert!((0.04..0.06).contains(&dup), "{dup}");
    assert_eq!(stats.delivered, a.len() as u64);
    assert_eq!(stats.delivered, 5_000 - stats.lost + stats.duplicated);
}

#[tokio::test(start_paused = true)]
async fn frames_arrive_after_the_delay_and_their_air_time() {
    let conditions = Conditions {
        bitrate: Some(2_400),
        ..Conditions::perfect().delayed(Duration::from_millis(50), Duration::ZERO)
    };
    let net = RadioNetwork::new(3, conditions);
    let tx = net.radio(DAC_SERVICE);
    let mut rx = net.radio(DAC_CLIENT);
    let start = tokio::time::Instant::now();
    tx.send(DAC_CLIENT, &[0xAB; 30]).await.unwrap(); // 100 ms on air at 2,400 bit/s
    tokio::time::sleep(Duration::from_millis(149)).await;
    assert!(rx.try_recv().is_none(), "too early");
    rx.recv().await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(150));
}

#[tokio::test(start_paused = true)]
async fn the_duty_cycle_holds_a_radio_back() {
    let conditions = Conditions {
        bitrate: Some(2_400),
        duty_cycle: Some(DutyCycle {
            fraction: 0.1,
            window: Duration::from_secs(1),
        }),
        ..Conditions::perfect()
    };
    let net = RadioNetwork::new(4, conditions);
    let tx = net.radio(DAC_SERVICE);
    let _rx = net.radio(DAC_CLIENT);
    let start = tokio::time::Instant::now();
    // 100 ms of air each; 10 % of the time: one at once, then one a second.
    for _ in 0..4 {
        tx.send(DAC_CLIENT, &[0; 30]).await.unwrap();
    }
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert_eq!(net.stats().throttled, 3);
}

#[tokio::test]
async fn a_full_receive_buffer_loses_frames() {
    let net = RadioNetwork::new(5, Conditions::perfect());
    let tx = net.radio(DAC_SERVICE);
    let mut rx = net.radio(DAC_CLIENT);
    for _ in 0..300 {
        tx.send(DAC_CLIENT, b"x").await.unwrap();
    }
    let s = net.stats();
    assert_eq!(s.delivered, lithos_lora_sim::RECEIVE_BUFFER as u64);
    assert_eq!(s.overrun, 300 - lithos_lora_sim::RECEIVE_BUFFER as u64);
    let mut n = 0;
    while rx.try_recv().is_some() {
        n += 1;
    }
    assert_eq!(n, lithos_lora_sim::RECEIVE_BUFFER);
    drop(rx);
    tx.send(DAC_CLIENT, b"x").await.unwrap();
    assert_eq!(
        net.stats().delivered,
        lithos_lora_sim::RECEIVE_BUFFER as u64,
        "nobody there"
    );
}
