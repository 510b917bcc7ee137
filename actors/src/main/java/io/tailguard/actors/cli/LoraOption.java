package io.tailguard.actors.cli;

import io.tailguard.model.Qwen3Model;
import io.tailguard.model.lora.LoraAdapter;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/** --lora DIR_OR_FILE: a DistillSparse adapter for the sparse actor (docs/algorithms.md, "DistillSparse"). */
public class LoraOption {
    @Option(names = "--lora",
            description = "A LoRA for the sparse actor only (the dense probe ignores it): a PEFT adapter directory "
                    + "(adapter_model.safetensors and adapter_config.json, as save_pretrained writes them), a checkpoint "
                    + "with one in its folder lora (train-sync --distill), or the safetensors file itself.")
    public Path lora;

    /** Loads the adapter and attaches it to the model, switched off; null without --lora. Bad files exit 2. */
    public LoraAdapter attach(Qwen3Model model) {
        if (lora == null) {
            return null;
        }
        LoraAdapter a = LoraAdapter.load(lora, model);
        model.attach(a);
        a.setEnabled(false);
        return a;
    }

    public String describe() {
        return lora == null ? null : lora.toString();
    }
}
