//! TestControl: moves a debug server's clock, so black-box tests reach rotation and expiry
//! without waiting. Compiled into debug builds only, and served only under the simulation
//! setting `manual_clock`.

use std::sync::Arc;

use rolecall_api::{self as pb, test_control_server};
use tonic::{Request, Response, Status};

use crate::domain::clock::{Clock, SystemClock, iso8601};

pub struct TestControlService {
    clock: Arc<SystemClock>,
}

impl TestControlService {
    pub fn new(clock: Arc<SystemClock>) -> Self {
        Self { clock }
    }
}

#[tonic::async_trait]
impl test_control_server::TestControl for TestControlService {
    async fn advance_clock(
        &self,
        req: Request<pb::AdvanceClockRequest>,
    ) -> Result<Response<pb::AdvanceClockResponse>, Status> {
        let seconds = req.into_inner().seconds;
        self.clock.advance(time::Duration::seconds(seconds));
        tracing::warn!(seconds, "test clock advanced");
        Ok(Response::new(pb::AdvanceClockResponse { now: iso8601(self.clock.unix()) }))
    }
}
