"""Per-host event ingestion: the event model, state engine, capture files, the live kernel and k8s audit."""
