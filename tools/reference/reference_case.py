"""What the reference generators share: the noise record (every Gaussian draw a diffusers
pipeline makes through randn_tensor, recorded on the float32 pass and replayed on the float64
pass, so that the two runs differ only in precision) and the writing of a pipeline case in the
shared conformance layout (<out>/pipeline/<name>.json and .safetensors)."""
import json
import os
import platform
import traceback

import torch
from safetensors.torch import save_file

import diffusers


class NoiseTape:
    """Records every randn_tensor draw (float32) on the first pass and replays it after."""

    def __init__(self):
        self.draws, self.sites, self.replay, self.next = [], [], False, 0

    def __call__(self, shape, generator=None, device=None, dtype=None, layout=None):
        if self.replay:
            t = self.draws[self.next]
            self.next += 1
            assert tuple(t.shape) == tuple(shape), (t.shape, shape)
            return t.to(dtype)
        t = torch.randn(tuple(shape), generator=generator, dtype=torch.float32)
        self.draws.append(t.clone())
        frame = traceback.extract_stack(limit=2)[0]
        self.sites.append("%s:%s" % (os.path.basename(frame.filename), frame.name))
        return t.to(dtype)

    def manifest(self):
        """The manifest's noise_draws: each draw's tensor name, where it was drawn, its shape."""
        return [{"name": "noise_%d" % i, "drawn_by": site, "shape": list(d.shape)}
                for i, (site, d) in enumerate(zip(self.sites, self.draws))]

    def tensors(self):
        return {"noise_%d" % i: d for i, d in enumerate(self.draws)}


def install(tape, modules):
    """Makes TAPE the randn_tensor of every module in MODULES (each imported it by name)."""
    for module in modules:
        module.randn_tensor = tape


def save_pipeline_case(out_dir, name, manifest, tensors, err, script, extra=None):
    """Completes MANIFEST (the fp32-vs-fp64 errors ERR, tolerances of 20 times them with floors,
    the case's names, its tensors' shapes, the generator's versions; then EXTRA) and writes the
    case with TENSORS (float32)."""
    tensors = {k: v.float().contiguous() for k, v in tensors.items()}
    manifest.update({
        "max_abs_err_fp32_vs_fp64": err,
        "tolerance": {"max_abs_latents": max(20 * max(err["step_latents"], err["final_latents"]),
                                             1e-4),
                      "max_abs_image": max(20 * err["image"], 1e-4)},
        "case": name, "family": "pipeline", "tensor_file": name + ".safetensors",
        "tensors": {k: {"dtype": "float32", "shape": list(v.shape)} for k, v in tensors.items()},
        "generator": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                      "python": platform.python_version(), "script": script},
    })
    manifest.update(extra or {})
    os.makedirs(os.path.join(out_dir, "pipeline"), exist_ok=True)
    save_file(tensors, os.path.join(out_dir, "pipeline", name + ".safetensors"))
    with open(os.path.join(out_dir, "pipeline", name + ".json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
