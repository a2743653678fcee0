//! TestControl: moves a debug server's clock, so black-box tests reach rotation and expiry
//! without waiting. Compiled into debug builds only, and served only under the simulation
//! setting `manual_clock`.

use std::sync::Arc;

use rolecall_api::{self as pb, test_control_server};
use tonic::{Request, Response, Status};

use crate::{
    custody::KeyKeeper,
    domain::clock::{Clock, SystemClock, iso8601},
};

pub struct TestControlService {
    clock: Arc<SystemClock>,
    keeper: Arc<KeyKeeper>,
}

impl TestControlService {
    pub fn new(clock: Arc<SystemClock>, keeper: Arc<KeyKeeper>) -> Self {
        Self { clock, keeper }
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
        // What is due at the new time happens before the answer, as if time had passed.
        self.keeper.tick().await.map_err(|e| crate::grpc::error::to_status(&e))?;
        Ok(Response::new(pb::AdvanceClockResponse { now: iso8601(self.clock.unix()) }))
    }
}
