//! GPU workers: one child process per device (`process`), placed on the devices the
//! configuration names (`placement`, `gpus`), supervised by the daemon (`supervisor`),
//! talking over a pipe in typed JSON lines (`protocol`). A CUDA fault or an out-of-memory
//! kill takes down one worker, never the daemon, and only its job is retried.

pub mod gpus;
pub mod placement;
pub mod process;
pub mod protocol;
pub mod supervisor;

pub use gpus::GpuView;
pub use placement::{Placement, PlacementError, place};
pub use protocol::{FailureClass, FromWorker, RunJob, ToWorker};
pub use supervisor::{WorkerEvent, WorkerSpec, supervise};
