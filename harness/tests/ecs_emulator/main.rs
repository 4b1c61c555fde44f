//! The ECS emulator driven by the official `aws-sdk-ecs` client over a real local fleet:
//! real replica processes named by their task ids, the router, the journal. Every wait is
//! bounded (`support::PATIENCE`), so a regression fails in seconds instead of hanging CI.

mod cli; // `dropzero ecs-emulator`: its line, the SDK against it, SIGINT, no child left
mod deploy; // forceNewDeployment to COMPLETED; a broken revision to FAILED and rollback
mod describe; // DescribeServices/Tasks/Clusters/TaskDefinition shapes; typed errors; auth
mod stop; // StopTask: no deregistration first, UserInitiated, replacement; a crash
mod support; // the fleet, the SDK client, bounded waits
