"""Accounts and organizations: users and their passwords (`users`), organizations, projects,
memberships and roles (`orgs`), and the first organization/project/user/API key created by
`owlscope init` or LANGFUSE_INIT_* (`bootstrap`). Every edge (UI, CLI, headless start) creates
them through these validated functions."""
