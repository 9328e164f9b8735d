//! GPU vs the f64 CPU reference: seeded random shapes of one layer ([`shapes`]) and seeded
//! random networks over the whole model surface ([`models`]), every storage type and kernel
//! variant, outputs poisoned with NaN first.

mod models;
mod shapes;
