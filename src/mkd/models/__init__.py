"""Models: the teacher (any HF encoder + task heads) and the students, behind one registry of
architectures (base.ARCHS). base.py is the contract every model keeps; loading.py knows them all."""
