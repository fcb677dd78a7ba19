from facesr_kd.utils.registry_scan import import_modules

# Every facesr_kd/models/*_model.py registers its classes in BasicSR's registry on import.
_modules = import_modules(__name__, '_model')
