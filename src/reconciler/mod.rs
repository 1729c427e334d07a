//! The offboarding reconciler (DESIGN flow 5). `plan` decides without I/O; the Graph
//! walk, the transactional `apply` and the scheduler build on it (issue 4).

pub mod plan;
