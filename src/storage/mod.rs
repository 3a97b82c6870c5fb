//! Where objects live: the OpenDAL operator over the originals (and the persistent variant
//! tier), and the network guard of the HTTP origin.

pub mod origin;
