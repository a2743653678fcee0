//! The front doors bound the work anyone can make them do before authentication.

use crate::common::*;

#[tokio::test]
async fn query_lists_longer_than_1000_are_refused_before_authentication() {
    let server = TestServer::start().await;
    let client = reqwest::Client::new();
    let post = |body: String| {
        client
            .post(format!("http://{}/", server.query_addr))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    // 1,001 context entries from no one: refused as too long, not read, not authenticated.
    let entries: String = (1..=1001)
        .map(|n| format!("&ContextEntries.member.{n}.ContextKeyName=k{n}&ContextEntries.member.{n}.ContextKeyValues.member.1=v"))
        .collect();
    let answer = post(format!("Action=SimulatePrincipalPolicy&Version=2010-05-08{entries}")).await.unwrap();
    assert_eq!(answer.status(), 400);
    let text = answer.text().await.unwrap();
    assert!(text.contains("<Code>ValidationError</Code>") && text.contains("1000"), "{text}");
    // EC2's spelling too, with EC2's error shape.
    let answer =
        post("Action=DescribeInstances&Version=2016-11-15&InstanceId.5000=i-a".into()).await.unwrap();
    assert_eq!(answer.status(), 400);
    assert!(answer.text().await.unwrap().contains("<Response><Errors>"));
    // At 1,000, the request goes on to authentication (and, unsigned, stops there).
    let answer = post("Action=ListUsers&Version=2010-05-08&Marker.member.1000=x".into()).await.unwrap();
    assert_eq!(answer.status(), 403);
}

/// Sends `request` on `stream` and reads one HTTP/1.1 response (head and Content-Length body).
async fn exchange(stream: &mut tokio::net::TcpStream, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut byte = [0u8; 1];
    while !response.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "closed mid-head");
        response.push(byte[0]);
    }
    let head = String::from_utf8(response).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    head + &String::from_utf8_lossy(&body)
}

/// Reads until the server closes the connection (a guard of a minute fails the test
/// instead of hanging it, where the server never would).
async fn until_closed(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut rest = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(60), stream.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the server kept the connection open");
    rest
}

#[tokio::test]
async fn slow_and_idle_connections_are_closed_after_the_header_read_timeout() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start_with(|c| c.server.http_header_read_timeout_ms = 200).await;
    for door in [server.imds_addr, server.query_addr] {
        // Headers that never end.
        let mut slow = tokio::net::TcpStream::connect(door).await.unwrap();
        slow.write_all(b"GET /latest/meta-data/ HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        until_closed(&mut slow).await;
        // A keep-alive connection left idle after its answer.
        let mut idle = tokio::net::TcpStream::connect(door).await.unwrap();
        let answer = exchange(&mut idle, "GET /latest/meta-data/ HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 "), "{answer}");
        until_closed(&mut idle).await;
    }
}

#[tokio::test]
async fn past_the_connection_limit_new_connections_wait_while_established_ones_are_served() {
    let server = TestServer::start_with(|c| {
        c.server.http_max_connections = 2;
        c.server.http_header_read_timeout_ms = 120_000;
    })
    .await;
    let request = "GET /?Action=GetCallerIdentity&Version=2011-06-15 HTTP/1.1\r\nHost: x\r\n\r\n";
    let connect = || tokio::net::TcpStream::connect(server.query_addr);
    // B (idle) then A (a client): both accepted once A has its answer.
    let mut idle = connect().await.unwrap();
    let mut client = connect().await.unwrap();
    assert!(exchange(&mut client, request).await.starts_with("HTTP/1.1 403"));
    // C asks while the door is full; A keeps being served meanwhile.
    let mut waiting = connect().await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut waiting, request.as_bytes()).await.unwrap();
    assert!(exchange(&mut client, request).await.starts_with("HTTP/1.1 403"));
    let open = server.counter("rolecall_http_connections{door=\"query\"}").await;
    assert_eq!(open, 2, "C was not let in");
    // B leaves: C is let in and answered.
    tokio::io::AsyncWriteExt::shutdown(&mut idle).await.unwrap();
    drop(idle);
    let answer = String::from_utf8(until_closed_or_answered(&mut waiting).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
}

/// Reads C's answer: its head and body, however the server frames them.
async fn until_closed_or_answered(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut answer = vec![0u8; 12];
    let read = tokio::time::timeout(std::time::Duration::from_secs(60), stream.read_exact(&mut answer)).await;
    assert!(read.is_ok(), "C was never answered");
    answer
}

/// Each door takes as much body as its requests need: IMDS's have none (1 KiB at most), the
/// Query port's at most `server.query_max_body_bytes` (1 MiB). Past it, 413 before the body
/// is read, whether its length is declared or not.
#[tokio::test]
async fn request_bodies_are_bounded_per_door() {
    let server = TestServer::start().await;
    role_in_profile(&server, "Web").await;
    let (instance, _) = launch(&server, 1, Some("Web")).await.remove(0);
    let client = reqwest::Client::new();
    let token = |body: Vec<u8>| {
        client
            .put(format!("http://{}/{}/latest/api/token", server.imds_addr, instance.instance_id))
            .header("X-aws-ec2-metadata-token-ttl-seconds", "60")
            .body(body)
            .send()
    };
    assert_eq!(token(Vec::new()).await.unwrap().status(), 200);
    assert_eq!(token(vec![b'x'; 4096]).await.unwrap().status(), 413);

    let query = format!("http://{}/", server.query_addr);
    let post = |body: String| {
        client.post(&query).header("content-type", "application/x-www-form-urlencoded").body(body).send()
    };
    let form = |size: usize| format!("Action=ListUsers&Version=2010-05-08&Marker={}", "m".repeat(size));
    assert_eq!(post(form(1000)).await.unwrap().status(), 403, "small: on to authentication");
    assert_eq!(post(form(2 << 20)).await.unwrap().status(), 413, "a declared length past the limit");
    // Chunked, with no length declared: cut off as it is read.
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(server.query_addr).await.unwrap();
    let head = "POST / HTTP/1.1\r\nHost: q\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("10000\r\n{}\r\n", "m".repeat(0x10000));
    for _ in 0..32 {
        // The server may answer and close before all of it is sent.
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let answer = until_closed_or_answered(&mut stream).await;
    assert_eq!(&answer[..12], b"HTTP/1.1 413", "{}", String::from_utf8_lossy(&answer));
}

/// gRPC's listener is bounded as the HTTP doors are: a connection that sends nothing within
/// the header read timeout is closed (hyper's HTTP/2 server would wait for its preface for
/// good), and a client that began is served.
#[tokio::test]
async fn grpc_connections_that_send_nothing_in_time_are_closed() {
    let server = TestServer::start_with(|c| c.server.http_header_read_timeout_ms = 200).await;
    let mut silent = tokio::net::TcpStream::connect(server.grpc_addr).await.unwrap();
    assert!(until_closed(&mut silent).await.is_empty());
    // Half a preface, then nothing.
    let mut slow = tokio::net::TcpStream::connect(server.grpc_addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut slow, b"PRI * HTTP/2.0").await.unwrap();
    until_closed(&mut slow).await;
    let users = server.iam().list_users(rolecall_api::ListUsersRequest::default()).await;
    assert!(users.is_ok(), "{users:?}");
}

#[tokio::test]
async fn past_grpc_max_connections_new_connections_wait_while_established_ones_are_served() {
    let server = TestServer::start_with(|c| {
        c.server.grpc_max_connections = 2;
        c.server.http_header_read_timeout_ms = 120_000;
    })
    .await;
    let list = || rolecall_api::ListUsersRequest::default();
    // A: the server's channel, connected by a first call; B: a connection that idles.
    server.iam().list_users(list()).await.unwrap();
    let mut idle = tokio::net::TcpStream::connect(server.grpc_addr).await.unwrap();
    // C: another client, while the listener is full; A keeps being served meanwhile.
    let other = tonic::transport::Endpoint::from_shared(format!("http://{}", server.grpc_addr)).unwrap();
    let waiting = tokio::spawn(async move {
        let channel = other.connect().await?;
        let users = rolecall_api::iam_client::IamClient::new(channel).list_users(list()).await;
        Ok::<_, tonic::transport::Error>(users.is_ok())
    });
    server.iam().list_users(list()).await.unwrap();
    let open = server.counter("rolecall_http_connections{door=\"grpc\"}").await;
    assert_eq!(open, 2, "C was let in past the maximum");
    // B leaves: C is let in and answered.
    tokio::io::AsyncWriteExt::shutdown(&mut idle).await.unwrap();
    drop(idle);
    assert!(waiting.await.unwrap().unwrap(), "C was answered");
}

/// A connection from `ip` to the gRPC listener, with HTTP/2's client preface sent: whether
/// the server took it (it answers with its SETTINGS) or closed it at once.
async fn grpc_connection_from(server: &TestServer, ip: &str) -> (tokio::net::TcpStream, bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{ip}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(server.grpc_addr).await.unwrap();
    let sent = stream.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
    let mut first = [0u8; 9];
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), stream.read(&mut first)).await;
    let taken = sent.is_ok() && matches!(read, Ok(Ok(n)) if n > 0);
    (stream, taken)
}

/// One peer address holds at most `server.max_connections_per_address` of a listener's
/// connections, so that it cannot take every place; this host's own 127.0.0.1 is not bound
/// by it (the operator's tools), other loopback addresses are (simulated instances).
#[tokio::test]
async fn one_peer_address_cannot_take_every_connection() {
    let server = TestServer::start_with(|c| c.server.max_connections_per_address = 2).await;
    let (first, taken) = grpc_connection_from(&server, "127.0.0.2").await;
    assert!(taken);
    let (_second, taken) = grpc_connection_from(&server, "127.0.0.2").await;
    assert!(taken);
    let (_, taken) = grpc_connection_from(&server, "127.0.0.2").await;
    assert!(!taken, "a third connection from one address was taken");
    let refused = server.counter("rolecall_connections_refused_total{door=\"grpc\"}").await;
    assert_eq!(refused, 1);
    // Another address, and this host's own, are let in.
    let (_other, taken) = grpc_connection_from(&server, "127.0.0.3").await;
    assert!(taken);
    let mut own = vec![];
    for _ in 0..4 {
        let (stream, taken) = grpc_connection_from(&server, "127.0.0.1").await;
        assert!(taken, "this host's own connection was refused");
        own.push(stream);
    }
    server.iam().list_users(rolecall_api::ListUsersRequest::default()).await.unwrap();
    // The address's first connection closes: its place is free again (once the server has
    // seen the close).
    drop(first);
    let mut poll = tokio::time::interval(std::time::Duration::from_millis(5));
    for attempt in 0.. {
        poll.tick().await;
        if grpc_connection_from(&server, "127.0.0.2").await.1 {
            break;
        }
        assert!(attempt < 2000, "the address's place was not freed");
    }
}
