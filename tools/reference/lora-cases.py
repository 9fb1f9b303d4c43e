#!/usr/bin/python3
"""Writes Gesso's own LoRA conformance cases with diffusers (and PEFT) as the reference.

Two random LoRAs for tiny-sd1 are written first, into <out>/loras/:
  lora-tiny-sd1-kohya.safetensors  kohya/A1111 layout, rank 4, alpha 2: every attention
      projection (to_q/k/v/out.0), the transformers' 1x1-convolution proj_in/proj_out, the
      feed-forward layers, time_emb_proj, the resnets' 3x3 conv1 as LoCon (down has the
      kernel, up is 1x1), and every projection and MLP layer of the text encoder;
  lora-tiny-sd1-peft.safetensors   diffusers' own PEFT layout (unet.<module>.lora_A/lora_B),
      rank 2 on cross-attention's to_k/to_v and the resnets' conv2, no alpha metadata (scale 1).
Then diffusers loads them into tiny-sd1 (StableDiffusionPipeline.load_lora_weights, PEFT
backend; set_adapters with the case's weights) and the UNet's and text encoder's outputs for the
shared cases' inputs are stored, in the shared unet/ and text_encoder/ layouts, with a "loras"
member naming the files (relative to the case folder) and their weights. Each case is run in
float32 (stored) and float64; the difference sets its tolerance (20x, with floors of 1e-4), as
the shared cases do. The notes give how far the LoRA moves the output, so that a harness that
ignored it would fail.

Run in a Debian 13 root with python3-torch, diffusers, PEFT and accelerate from their public
sources (see tools/reference/README.md):
    lora-cases.py --shared ../shared/conformance --out tests/conformance/cases
"""
import argparse
import json
import os
import platform

import torch
from safetensors.torch import load_file, save_file

import diffusers
import peft
from diffusers import (AutoencoderKL, DDIMScheduler, StableDiffusionPipeline,
                       UNet2DConditionModel)
from transformers import CLIPTextModel

RANK_KOHYA, ALPHA_KOHYA, RANK_PEFT = 4, 2.0, 2
UNET_CASE = "unet/unet-tiny-sd1-00-t999"
TE_CASE = "text_encoder/te-tiny-sd1-00"


def uniform(g, shape, amplitude):
    return (torch.rand(shape, generator=g, dtype=torch.float32) - 0.5) * 2 * amplitude


def kohya_targets(unet, te):
    """(kohya stem, weight shape) of every layer the kohya LoRA changes."""
    out = []
    for name, p in unet.named_parameters():
        if not name.endswith(".weight"):
            continue
        module = name[:-len(".weight")]
        if (module.split(".")[-1] in ("to_q", "to_k", "to_v", "proj_in", "proj_out",
                                       "time_emb_proj", "conv1")
                or module.endswith(("to_out.0", "ff.net.0.proj", "ff.net.2"))):
            if p.ndim in (2, 4) and "norm" not in module:
                out.append(("lora_unet_" + module.replace(".", "_"), tuple(p.shape)))
    for name, p in te.named_parameters():
        module = name[:-len(".weight")] if name.endswith(".weight") else None
        if module and module.split(".")[-1] in ("q_proj", "k_proj", "v_proj", "out_proj",
                                                "fc1", "fc2"):
            out.append(("lora_te_" + module.replace(".", "_"), tuple(p.shape)))
    return out


def write_kohya(path, unet, te):
    g = torch.Generator().manual_seed(101)
    tensors = {}
    for stem, shape in kohya_targets(unet, te):
        out_f, in_f, kernel = shape[0], shape[1], shape[2:]
        tensors[stem + ".lora_down.weight"] = uniform(g, (RANK_KOHYA, in_f, *kernel),
                                                      1.0 / (in_f ** 0.5))
        tensors[stem + ".lora_up.weight"] = uniform(g, (out_f, RANK_KOHYA, *((1, 1) if kernel
                                                                             else ())), 0.5)
        tensors[stem + ".alpha"] = torch.tensor(ALPHA_KOHYA)
    save_file(tensors, path)


def write_peft(path, unet):
    g = torch.Generator().manual_seed(202)
    tensors = {}
    for name, p in unet.named_parameters():
        module = name[:-len(".weight")]
        if not name.endswith(".weight") or not (module.endswith(("attn2.to_k", "attn2.to_v"))
                                                  or module.endswith("conv2")):
            continue
        out_f, in_f, kernel = p.shape[0], p.shape[1], tuple(p.shape[2:])
        tensors["unet.%s.lora_A.weight" % module] = uniform(g, (RANK_PEFT, in_f, *kernel),
                                                            1.0 / (in_f ** 0.5))
        tensors["unet.%s.lora_B.weight" % module] = uniform(
            g, (out_f, RANK_PEFT, *((1, 1) if kernel else ())), 0.5)
    save_file(tensors, path)


def pipeline(models, loras, dtype):
    """tiny-sd1 with LORAS ([(path, weight)]) loaded through diffusers' PEFT backend."""
    d = os.path.join(models, "tiny-sd1", "diffusers")
    pipe = StableDiffusionPipeline(
        vae=AutoencoderKL.from_pretrained(os.path.join(d, "vae")),
        text_encoder=CLIPTextModel.from_pretrained(os.path.join(d, "text_encoder")),
        tokenizer=None, unet=UNet2DConditionModel.from_pretrained(os.path.join(d, "unet")),
        scheduler=DDIMScheduler.from_pretrained(os.path.join(d, "scheduler")),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    names = []
    for i, (path, _) in enumerate(loras):
        names.append("lora%d" % i)
        pipe.load_lora_weights(load_file(path), adapter_name=names[-1])
    if loras:
        pipe.set_adapters(names, adapter_weights=[w for _, w in loras])
    pipe.unet.to(dtype).eval()
    pipe.text_encoder.to(dtype).eval()
    return pipe


def outputs(family, pipe, inputs, dtype):
    with torch.no_grad():
        if family == "unet":
            return {"noise_pred": pipe.unet(inputs["sample"].to(dtype), inputs["timestep"].to(dtype),
                                            encoder_hidden_states=inputs[
                                                "encoder_hidden_states"].to(dtype)).sample}
        o = pipe.text_encoder(inputs["input_ids"], output_hidden_states=True)
        pen = o.hidden_states[-2]
        return {"last_hidden_state": o.last_hidden_state, "penultimate_hidden_state": pen,
                "penultimate_ln": pipe.text_encoder.text_model.final_layer_norm(pen)}


def write_case(spec, shared, out_dir, lora_dir):
    models = os.path.join(shared, "models")
    base_json = json.load(open(os.path.join(shared, spec["base"] + ".json")))
    base = load_file(os.path.join(shared, spec["base"] + ".safetensors"))
    family = base_json["family"]
    inputs = {k: base[k] for k in base_json["inputs"]}
    loras = [(os.path.join(lora_dir, f), w) for f, w in spec["loras"]]
    got32 = outputs(family, pipeline(models, loras, torch.float32), inputs, torch.float32)
    got64 = outputs(family, pipeline(models, loras, torch.float64), inputs, torch.float64)
    plain = outputs(family, pipeline(models, [], torch.float32), inputs, torch.float32)
    err = {k: float((got32[k].double() - got64[k]).abs().max()) for k in got32}
    moved = {k: float((got32[k] - plain[k]).abs().max()) for k in got32}
    name = spec["name"]
    tensors = dict(inputs)
    tensors.update(got32)
    manifest = {
        "model": "tiny-sd1",
        "loras": [{"file": "../loras/" + f, "weight": w} for f, w in spec["loras"]],
        "inputs": base_json["inputs"], "outputs": sorted(got32),
        "notes": spec["notes"] + " Inputs are %s's; diffusers loads the LoRAs with "
                 "load_lora_weights (PEFT backend) and set_adapters(adapter_weights=...). "
                 "The LoRAs move the outputs by %s (max abs), so a harness that ignored them "
                 "would fail." % (spec["base"], {k: "%.3g" % v for k, v in moved.items()}),
        "max_abs_err_fp32_vs_fp64": err,
        "tolerance": {"max_abs": max(20 * max(err.values()), 1e-4)},
        "case": name, "family": family, "tensor_file": name + ".safetensors",
        "tensors": {k: {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape)}
                    for k, v in tensors.items()},
        "generator": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                      "peft": peft.__version__, "python": platform.python_version(),
                      "script": "tools/reference/lora-cases.py"},
    }
    folder = os.path.join(out_dir, family)
    os.makedirs(folder, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()},
              os.path.join(folder, name + ".safetensors"))
    with open(os.path.join(folder, name + ".json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(name, "fp32 vs fp64", err, "moved", moved)


CASES = [
    dict(name="unet-tiny-sd1-lora-kohya-00-t999", base=UNET_CASE,
         loras=[("lora-tiny-sd1-kohya.safetensors", 0.8)],
         notes="The kohya LoRA (linear, 1x1 and LoCon 3x3 layers) at weight 0.8."),
    dict(name="unet-tiny-sd1-lora-two-00-t999", base=UNET_CASE,
         loras=[("lora-tiny-sd1-kohya.safetensors", 0.7),
                ("lora-tiny-sd1-peft.safetensors", -0.5)],
         notes="Two LoRAs at once, the kohya one at 0.7 and the PEFT one at -0.5; they share "
               "cross-attention's to_k/to_v."),
    dict(name="te-tiny-sd1-lora-kohya-00", base=TE_CASE,
         loras=[("lora-tiny-sd1-kohya.safetensors", 0.8)],
         notes="The kohya LoRA's text-encoder layers (every projection and MLP layer) at "
               "weight 0.8."),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", required=True, help="../shared/conformance")
    ap.add_argument("--out", required=True, help="tests/conformance/cases")
    args = ap.parse_args()
    torch.set_num_threads(1)
    lora_dir = os.path.join(args.out, "loras")
    os.makedirs(lora_dir, exist_ok=True)
    d = os.path.join(args.shared, "models", "tiny-sd1", "diffusers")
    unet = UNet2DConditionModel.from_pretrained(os.path.join(d, "unet"))
    te = CLIPTextModel.from_pretrained(os.path.join(d, "text_encoder"))
    write_kohya(os.path.join(lora_dir, "lora-tiny-sd1-kohya.safetensors"), unet, te)
    write_peft(os.path.join(lora_dir, "lora-tiny-sd1-peft.safetensors"), unet)
    for spec in CASES:
        write_case(spec, args.shared, args.out, lora_dir)


if __name__ == "__main__":
    main()
