//! Two real WebRTC peers (str0m: ICE, DTLS, SCTP) open a data channel over loopback, with
//! only Lithos carrying what they need to find each other: alice's watcher offers, her
//! camera answers, each sends its ICE candidate as `ice-candidate-found` (trickle: the SDPs
//! hold none), and then each side's message crosses the data channel.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lithos_core::Jid;
use lithos_core::codec::WireFormat;
use lithos_testkit::things::{self, KEY, T};
use lithos_tuxp_operator::OperatorExt;
use lithos_webrtc_signaling::{Incoming, Signal, SignalKind, SignalingExt, incoming};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::channel::ChannelId;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// One side: its WebRTC session and its UDP socket.
struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    addr: SocketAddr,
    channel: Option<ChannelId>,
    received: Vec<String>,
}

impl Peer {
    async fn new() -> Peer {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        Peer {
            rtc: Rtc::builder().build(Instant::now()),
            socket,
            addr,
            channel: None,
            received: Vec::new(),
        }
    }

    /// Its host candidate, added locally, as the SDP line to signal.
    fn candidate(&mut self) -> String {
        let c = Candidate::host(self.addr, "udp").unwrap();
        let line = c.to_sdp_string();
        self.rtc.add_local_candidate(c);
        line
    }

    /// Runs the session until it waits for time or the network: sends what it has to send,
    /// takes what arrived.
    fn step(&mut self) {
        loop {
            match self.rtc.poll_output().unwrap() {
                Output::Transmit(t) => {
                    let _ = self.socket.try_send_to(&t.contents, t.destination);
                }
                Output::Event(Event::ChannelOpen(id, _)) => self.channel = Some(id),
                Output::Event(Event::ChannelData(d)) => {
                    self.received
                        .push(String::from_utf8_lossy(&d.data).into_owned());
                }
                Output::Event(_) => {}
                Output::Timeout(_) => break,
            }
        }
        let mut buf = vec![0u8; 2000];
        while let Ok((n, source)) = self.socket.try_recv_from(&mut buf) {
            let Ok(contents) = buf[..n].try_into() else {
                continue;
            };
            let input = Input::Receive(
                Instant::now(),
                Receive {
                    proto: Protocol::Udp,
                    source,
                    destination: self.addr,
                    contents,
                },
            );
            self.rtc.handle_input(input).unwrap();
        }
        self.rtc
            .handle_input(Input::Timeout(Instant::now()))
            .unwrap();
    }

    fn send(&mut self, text: &str) -> bool {
        let Some(id) = self.channel else { return false };
        match self.rtc.channel(id) {
            Some(mut ch) => ch.write(false, text.as_bytes()).unwrap_or(false),
            None => false,
        }
    }
}

async fn next(rx: &mut mpsc::Receiver<Incoming>, kind: SignalKind) -> Incoming {
    let got = tokio::time::timeout(T, rx.recv()).await.unwrap().unwrap();
    assert_eq!(got.signal.kind, kind, "{got:?}");
    got
}

async fn a_data_channel_signalled_through_lithos(format: WireFormat) {
    str0m::crypto::from_feature_flags().install_process_default();
    let s = things::start("").await;
    let (handler, mut alice_rx) = incoming();
    let (alice, _ae) = s
        .client("alice@localhost/watcher", "alice-password")
        .format(format)
        .handle_iq(lithos_webrtc_signaling::NS, handler)
        .connect()
        .await
        .unwrap();
    alice
        .authorize_thing("SC-01-0D0D0D10", KEY, T)
        .await
        .unwrap();
    let (handler, mut cam_rx) = incoming();
    let (camera, _ce) = things::runtime(&s, "SC-01-0D0D0D10", format)
        .handle_iq(lithos_webrtc_signaling::NS, handler)
        .start()
        .await
        .unwrap();
    let cam = Jid::new("sc-01-0d0d0d10@localhost").unwrap();
    let (mut watcher, mut webcam) = (Peer::new().await, Peer::new().await);

    // open / opened.
    alice
        .signal(cam.clone(), Signal::new(SignalKind::Open, ""), T)
        .await
        .unwrap();
    let asker = next(&mut cam_rx, SignalKind::Open).await.from;
    camera
        .signal(asker.clone(), Signal::new(SignalKind::Opened, ""), T)
        .await
        .unwrap();
    next(&mut alice_rx, SignalKind::Opened).await;

    // The watcher offers a data channel; the camera answers.
    let mut change = watcher.rtc.sdp_api();
    change.add_channel("lithos".into());
    let (offer, pending) = change.apply().unwrap();
    alice
        .signal(
            cam.clone(),
            Signal::new(SignalKind::Offer, offer.to_sdp_string()),
            T,
        )
        .await
        .unwrap();
    let offer = next(&mut cam_rx, SignalKind::Offer).await.signal.data;
    let answer = webcam
        .rtc
        .sdp_api()
        .accept_offer(SdpOffer::from_sdp_string(&offer).unwrap())
        .unwrap();
    camera
        .signal(
            asker.clone(),
            Signal::new(SignalKind::Answer, answer.to_sdp_string()),
            T,
        )
        .await
        .unwrap();
    let answer = next(&mut alice_rx, SignalKind::Answer).await.signal.data;
    watcher
        .rtc
        .sdp_api()
        .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
        .unwrap();

    // Trickled candidates, each way.
    let line = watcher.candidate();
    alice
        .signal(
            cam.clone(),
            Signal::new(SignalKind::IceCandidateFound, line),
            T,
        )
        .await
        .unwrap();
    let line = next(&mut cam_rx, SignalKind::IceCandidateFound)
        .await
        .signal
        .data;
    webcam
        .rtc
        .add_remote_candidate(Candidate::from_sdp_string(&line).unwrap());
    let line = webcam.candidate();
    camera
        .signal(
            asker.clone(),
            Signal::new(SignalKind::IceCandidateFound, line),
            T,
        )
        .await
        .unwrap();
    let line = next(&mut alice_rx, SignalKind::IceCandidateFound)
        .await
        .signal
        .data;
    watcher
        .rtc
        .add_remote_candidate(Candidate::from_sdp_string(&line).unwrap());

    // Now the peers talk directly: the channel opens and a message crosses each way.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut sent_w, mut sent_c) = (false, false);
    while Instant::now() < deadline && (webcam.received.is_empty() || watcher.received.is_empty()) {
        watcher.step();
        webcam.step();
        if !sent_w {
            sent_w = watcher.send("hello from the watcher");
        }
        if !sent_c {
            sent_c = webcam.send("hello from the camera");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(webcam.received, ["hello from the watcher"]);
    assert_eq!(watcher.received, ["hello from the camera"]);

    // close / closed.
    alice
        .signal(cam, Signal::new(SignalKind::Close, ""), T)
        .await
        .unwrap();
    next(&mut cam_rx, SignalKind::Close).await;
    camera
        .signal(asker, Signal::new(SignalKind::Closed, ""), T)
        .await
        .unwrap();
    next(&mut alice_rx, SignalKind::Closed).await;
}

lithos_testkit::in_both_formats!(a_data_channel_signalled_through_lithos);
