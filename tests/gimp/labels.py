# Run by tests/gimp/run-e2e.sh through GIMP's Python-Fu batch interpreter (python-fu-eval):
# writes, as JSON to $GESSO_E2E_OUT, what GIMP reports about each Gesso procedure: its menu
# label (translated in the current language), menu paths, image types and argument names.
# Script-Fu cannot do this: GIMP 3.0 exports no PDB procedure that returns a menu label.
import json
import os

from gi.repository import Gimp

listing = {}
pdb = Gimp.get_pdb()
for name in ("plug-in-gesso-generate", "plug-in-gesso-inpaint",
             "plug-in-gesso-realize-strokes", "plug-in-gesso-restyle"):
    proc = pdb.lookup_procedure(name)
    if proc is None:
        listing[name] = None
        continue
    listing[name] = {
        "label": proc.get_menu_label(),
        "paths": list(proc.get_menu_paths()),
        "types": proc.get_image_types(),
        "args": [spec.name for spec in proc.get_arguments()],
    }
with open(os.environ["GESSO_E2E_OUT"], "w", encoding="utf-8") as out:
    json.dump(listing, out, ensure_ascii=False, indent=1)
