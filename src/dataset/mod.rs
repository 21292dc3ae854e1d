//! The dataset on disk, as the rooms that write and read it (sink, report,
//! query, pipeline) share it: where its own files live (`layout`) and where it is (`location`). It
//! imports nothing of theirs.

pub mod layout;
pub mod location;
