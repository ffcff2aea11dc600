"""Models: the teacher (any HF encoder + task heads) and the students, behind a registry."""


def register_all() -> None:
    """Import every architecture module so that its registry entry exists."""
    from mkd.models import teacher  # noqa: F401
    from mkd.models.students import bilstm, bilstm_attn, static, transformer  # noqa: F401
