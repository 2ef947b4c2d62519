//! Error lines on the wire.
