from facesr_kd.utils.registry_scan import import_modules

# Every facesr_kd/archs/*_arch.py registers its classes in BasicSR's registry on import.
_modules = import_modules(__name__, '_arch')
