//! OCI images: references, pulls, the content store, layer unpacking (see the crate docs).
