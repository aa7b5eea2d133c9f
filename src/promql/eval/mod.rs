//! Evaluation of expression nodes.
