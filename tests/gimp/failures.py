# Run by tests/gimp/run-e2e.sh through GIMP's Python-Fu batch interpreter (python-fu-eval):
# the plug-in's failures, one GIMP for all of them, so that GIMP is seen to keep running after
# each (issue 11). Python rather than Script-Fu: a failing PDB call ends a Script-Fu batch,
# while here its status and message are read and the next case runs.
#
# Environment: GESSO_E2E_FAILURES, a folder holding the models run-e2e.sh made from the demo
# model (nan/: a UNet weight NaN; f32/: every weight float32, whose UNet file is cut in place
# while a run uses it; ok/: untouched), and where failures.json is written: per case the
# status, the message, the layer counts before and after, and the seconds taken.
import json
import os
import subprocess
import time

from gi.repository import Gimp

base = os.environ["GESSO_E2E_FAILURES"]
pdb = Gimp.get_pdb()
results = {}


def new_image(width, height):
    img = Gimp.Image.new(width, height, Gimp.ImageBaseType.RGB)
    layer = Gimp.Layer.new(img, "background", width, height, Gimp.ImageType.RGBA_IMAGE, 100,
                           Gimp.LayerMode.NORMAL)
    img.insert_layer(layer, None, 0)
    return img, layer


def run(case, procedure, img, layer, **args):
    proc = pdb.lookup_procedure(procedure)
    config = proc.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", img)
    config.set_core_object_array("drawables", [layer])
    for key, value in args.items():
        config.set_property(key.replace("_", "-"), value)
    before = len(img.get_layers())
    start = time.monotonic()
    values = proc.run(config)
    seconds = time.monotonic() - start
    status = values.index(0)
    message = ""
    if status != Gimp.PDBStatusType.SUCCESS:
        try:
            message = values.index(1) or ""
        except Exception:
            message = ""
        if not message:
            message = pdb.get_last_error() or ""
    results[case] = {
        "status": status.value_nick if hasattr(status, "value_nick") else str(status),
        "success": status == Gimp.PDBStatusType.SUCCESS,
        "message": message,
        "layers_before": before,
        "layers_after": len(img.get_layers()),
        "seconds": seconds,
    }


common = dict(prompt="a red apple", steps=3, seed=1, random_seed=False)

# a NaN in the UNet's weights: refused by name, no layer
img, layer = new_image(64, 64)
layer.fill(Gimp.FillType.WHITE)
run("nan-model", "plug-in-gesso-generate", img, layer, model=os.path.join(base, "nan"),
    **common)

# the model cut in place (as a download over it does) a moment into the run
img, layer = new_image(64, 64)
layer.fill(Gimp.FillType.WHITE)
unet = os.path.join(base, "f32", "unet", "diffusion_pytorch_model.safetensors")
cutter = subprocess.Popen(["sh", "-c", 'sleep 1; head -c 100000 "$0" > "$0.part"; '
                           'cat "$0.part" > "$0"', unet])
run("model-cut-during-run", "plug-in-gesso-generate", img, layer,
    model=os.path.join(base, "f32"), **dict(common, steps=20))
cutter.wait()
# and a run after it, on the file as it now is: refused at open, with its message
run("model-cut-before-run", "plug-in-gesso-generate", img, layer,
    model=os.path.join(base, "f32"), **common)

# a canvas far too large for memory: refused before a pixel is read, no layer
img, layer = new_image(60000, 60000)
run("oversize-canvas", "plug-in-gesso-generate", img, layer, model=os.path.join(base, "ok"),
    **common)

# GIMP and the plug-in still work after all that
img, layer = new_image(64, 64)
layer.fill(Gimp.FillType.WHITE)
run("still-working", "plug-in-gesso-generate", img, layer, model=os.path.join(base, "ok"),
    **common)

with open(os.path.join(base, "failures.json"), "w", encoding="utf-8") as out:
    json.dump(results, out, ensure_ascii=False, indent=1)
