//! One file per input kind (the webhook's routes themselves are in
//! `railyard_connectors::http`).

use super::*;

mod amqp;
mod batch;
mod file;
mod schedule;
mod topic;
mod webhook;

pub(crate) use self::amqp::*;
pub(crate) use self::batch::*;
pub(crate) use self::file::*;
pub(crate) use self::schedule::*;
pub(crate) use self::topic::*;
pub(crate) use self::webhook::*;
