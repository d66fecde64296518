//! weft facade
