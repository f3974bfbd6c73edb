"""The camera agent: peer connections, offer normalisation, media sources and sinks."""
