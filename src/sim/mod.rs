//! The built-in simulated OpenAI-compatible server.
