"""Hydra configs: one primary config per command (`conf/<command>.yaml`), composed by
`nas.commands.compose_config`. A package so that Hydra finds it in an installed draftnas."""
