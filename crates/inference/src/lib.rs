//! Multi-round neural posterior estimation (SNPE-C / APT): the orchestrator and the trained posterior.
