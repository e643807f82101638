//! The `Control` gRPC service: the CLI's `--remote` commands and any gRPC client.

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use wsload_proto::pb::{
    control_server::Control, GetSummaryRequest, ListAgentsRequest, ListAgentsResponse, ListRunsRequest,
    ListRunsResponse, Progress, StartRunRequest, StartRunResponse, StopRunRequest, StopRunResponse, Summary,
    WatchRunRequest,
};

use crate::auth::{require, Role};
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
        require(&req, Role::Control)?;
        let r = req.into_inner();
        let plan = r.plan.ok_or_else(|| Status::invalid_argument("plan is required"))?;
        let plan = Plan::from_pb(&plan).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let program = plan.program().map_err(|e| Status::invalid_argument(e.to_string()))?;
        let thresholds = crate::thresholds::parse_for_plan(&r.thresholds, &program)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        #[allow(deprecated)] // still read from clients that only know the string field
        let legacy = r.on_agent_loss.as_str();
        let on_loss =
            OnAgentLoss::from_request(r.agent_loss, legacy).map_err(|e| Status::invalid_argument(e.to_string()))?;
        if let Some(w) = crate::capacity::batch_cap_warning(&plan) {
            tracing::warn!("{w}");
        }
        let req = RunRequest {
            plan,
            min_agents: r.min_agents as usize,
            on_loss,
            thresholds,
            allow_over_capacity: r.allow_over_capacity,
        };
        let run_id = self.hub.start_run(req).await?;
        Ok(Response::new(StartRunResponse { run_id }))
    }

    type WatchRunStream = ReceiverStream<Result<Progress, Status>>;

    async fn watch_run(&self, req: Request<WatchRunRequest>) -> Result<Response<Self::WatchRunStream>, Status> {
        require(&req, Role::View)?;
        let (tx, rx) = mpsc::channel(64);
        self.hub.watch(req.into_inner().run_id, tx).await?;
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn stop_run(&self, req: Request<StopRunRequest>) -> Result<Response<StopRunResponse>, Status> {
        require(&req, Role::Control)?;
        let stopped = self.hub.stop_run(req.into_inner().run_id).await?;
        Ok(Response::new(StopRunResponse { stopped }))
    }

    async fn list_agents(&self, req: Request<ListAgentsRequest>) -> Result<Response<ListAgentsResponse>, Status> {
        require(&req, Role::View)?;
        Ok(Response::new(ListAgentsResponse {
            agents: self.hub.list_agents().await?,
        }))
    }

    async fn get_summary(&self, req: Request<GetSummaryRequest>) -> Result<Response<Summary>, Status> {
        require(&req, Role::View)?;
        Ok(Response::new(self.hub.summary(req.into_inner().run_id).await?))
    }

    async fn list_runs(&self, req: Request<ListRunsRequest>) -> Result<Response<ListRunsResponse>, Status> {
        require(&req, Role::View)?;
        Ok(Response::new(ListRunsResponse {
            runs: self.hub.list_runs().await?,
        }))
    }
}
