//! The `Control` gRPC service: the CLI's `--remote` commands and any gRPC client.

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use wsload_proto::pb::{
    control_server::Control, GetSummaryRequest, ListAgentsRequest, ListAgentsResponse, Progress, StartRunRequest,
    StartRunResponse, StopRunRequest, StopRunResponse, Summary, WatchRunRequest,
};

use crate::hub::{Hub, OnAgentLoss, RunRequest};
use crate::plan::Plan;

/// The control service.
#[derive(Debug, Clone)]
pub struct ControlService {
    /// The hub that owns runs.
    pub hub: Hub,
}

#[tonic::async_trait]
impl Control for ControlService {
    async fn start_run(&self, req: Request<StartRunRequest>) -> Result<Response<StartRunResponse>, Status> {
        let r = req.into_inner();
        let plan = r.plan.ok_or_else(|| Status::invalid_argument("plan is required"))?;
        let plan = Plan::from_pb(&plan).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let thresholds =
            crate::thresholds::parse_all(&r.thresholds).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let on_loss = match r.on_agent_loss.as_str() {
            "" | "continue" => OnAgentLoss::Continue,
            "abort" => OnAgentLoss::Abort,
            other => {
                return Err(Status::invalid_argument(format!(
                    "on_agent_loss must be continue or abort, not {other}"
                )))
            }
        };
        let req = RunRequest {
            plan,
            min_agents: r.min_agents as usize,
            on_loss,
            thresholds,
        };
        let run_id = self.hub.start_run(req).await?;
        Ok(Response::new(StartRunResponse { run_id }))
    }

    type WatchRunStream = ReceiverStream<Result<Progress, Status>>;

    async fn watch_run(&self, req: Request<WatchRunRequest>) -> Result<Response<Self::WatchRunStream>, Status> {
        let (tx, rx) = mpsc::channel(64);
        self.hub.watch(req.into_inner().run_id, tx).await?;
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn stop_run(&self, req: Request<StopRunRequest>) -> Result<Response<StopRunResponse>, Status> {
        let stopped = self.hub.stop_run(req.into_inner().run_id).await?;
        Ok(Response::new(StopRunResponse { stopped }))
    }

    async fn list_agents(&self, _req: Request<ListAgentsRequest>) -> Result<Response<ListAgentsResponse>, Status> {
        Ok(Response::new(ListAgentsResponse {
            agents: self.hub.list_agents().await?,
        }))
    }

    async fn get_summary(&self, req: Request<GetSummaryRequest>) -> Result<Response<Summary>, Status> {
        Ok(Response::new(self.hub.summary(req.into_inner().run_id).await?))
    }
}
