"""Task plugins: importing one registers what its OpenMMLab package needs beyond the backbone.

``import internimage_mm`` registers only what every task uses (InternImage, DCNv3, the
optimizer constructor and wrappers, the FSDP strategy); a config names its task's module in
``custom_imports``::

    custom_imports = dict(imports=['internimage_mm.tasks.detection'], allow_failed_imports=False)
"""
