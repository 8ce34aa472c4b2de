//! Pod sandboxes: namespaces and pod networking (see the crate docs).
