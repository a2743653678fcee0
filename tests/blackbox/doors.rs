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
