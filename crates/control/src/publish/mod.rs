//! Publishing what the gateway serves: [`source`]s of the desired state
//! (the config [`file`], the registry, operator [`overrides`]) and the one
//! [`publisher`] that turns it into the data plane's snapshot.

pub mod file;
pub mod overrides;
pub mod publisher;
pub mod source;

pub use file::ConfigFile;
pub use overrides::Overrides;
pub use publisher::Publisher;
pub use source::{Desired, Override, Source};
