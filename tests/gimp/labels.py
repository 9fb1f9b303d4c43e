# Run by tests/gimp/run-e2e.sh through GIMP's Python-Fu batch interpreter (python-fu-eval):
# writes, as JSON to $GESSO_E2E_OUT, what GIMP reports about each Gesso procedure: its menu
# label (translated in the current language), menu paths, image types, argument names and
# argument labels, and the labels of the buttons every procedure dialog has, as libgimp
# translates them (for the mnemonic check). Script-Fu cannot do this: GIMP 3.0 exports no PDB
# procedure that returns a menu label.
import gettext
import json
import os

from gi.repository import Gimp

# GimpDialog's Help button and GimpProcedureDialog's own buttons (libgimp 3.0)
BUTTONS = ["_Help", "_Reset", "_Cancel", "_OK", "_Load Saved Settings", "_Save Settings"]
libgimp = gettext.translation("gimp30-libgimp", Gimp.locale_directory(), fallback=True)

listing = {"buttons": [libgimp.gettext(b) for b in BUTTONS]}
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
        "nicks": {spec.name: spec.get_nick() for spec in proc.get_arguments()},
    }
with open(os.environ["GESSO_E2E_OUT"], "w", encoding="utf-8") as out:
    json.dump(listing, out, ensure_ascii=False, indent=1)
