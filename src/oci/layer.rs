//! Reproducible layer building (see DESIGN.md "Layers and reproducibility").
