//! Placeholder: the ALB-like router lands from its own branch.
