//! Properties of a forward pass on the CPU reference and the GPU: hand-picked cases
//! ([`cases`]: last row of Y is Y_h, halves equal the whole, NaN propagation, huge inputs,
//! pipeline reuse, long sequences, profiling, typed errors) and proptest-generated ones
//! ([`generated`]: GPU = CPU, chunks = whole, reverse of reversed = forward, shrinking to
//! the smallest failing shape).

mod cases;
mod generated;
