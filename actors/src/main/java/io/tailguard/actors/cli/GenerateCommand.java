package io.tailguard.actors.cli;

import io.tailguard.model.Qwen3Model;
import io.tailguard.model.Devices;
import io.tailguard.model.tokenizer.ChatFormat;
import io.tailguard.model.tokenizer.Tokenizer;
import io.tailguard.model.tokenizer.Tokenizers;
import io.tailguard.rollout.generation.GenerationRequest;
import io.tailguard.rollout.generation.GenerationResult;
import io.tailguard.rollout.generation.Generated;
import io.tailguard.rollout.generation.Generator;
import io.tailguard.rollout.generation.SamplingParams;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Callable;

@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Generate a continuation of one prompt with a checkpoint.")
final class GenerateCommand implements Callable<Integer> {
    @Mixin
    Common common;

    @Option(names = "--checkpoint", required = true, description = "Checkpoint directory; \"default\" is the embedded default, trained once and cached.")
    Path checkpoint;

    @ArgGroup(exclusive = true, multiplicity = "1")
    PromptSource prompt;

    static final class PromptSource {
        @Option(names = "--prompt", description = "Prompt text (needs the checkpoint's tokenizer).")
        String text;

        @Option(names = "--prompt-ids", split = ",", description = "Prompt token ids, comma separated.")
        int[] ids;
    }

    @Option(names = "--max-new", required = true, description = "Most tokens to generate.")
    int maxNew;

    @Option(names = "--temperature", defaultValue = "0", description = "0 is greedy (default: ${DEFAULT-VALUE}).")
    double temperature;

    @Option(names = "--top-p", defaultValue = "1", description = "Nucleus sampling mass (default: ${DEFAULT-VALUE}).")
    double topP;

    @Option(names = "--top-k", defaultValue = "0", description = "Sample among the k most likely tokens; 0: all (default: ${DEFAULT-VALUE}).")
    int topK;

    @Option(names = "--seed", defaultValue = "0", description = "Sampling seed (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--top-logprobs", defaultValue = "0", description = "Also return the top K log-probs of every position.")
    int topLogprobs;

    @Option(names = "--stop-ids", split = ",", description = "Token ids that end generation (default: the model's eos_token_id).")
    int[] stopIds;

    @Option(names = "--chat-template", defaultValue = "off", paramLabel = "on|off",
            description = "Render --prompt as a user turn with the checkpoint's chat template and the generation prompt; "
                    + "generation also stops at the template's end-of-turn token unless --stop-ids is given (default: ${DEFAULT-VALUE}).")
    String chatTemplate;

    @Option(names = "--system-prompt", description = "A system turn before the prompt (with --chat-template on).")
    String systemPrompt;

    @Option(names = "--enable-thinking", paramLabel = "true|false",
            description = "The template's enable_thinking switch (Qwen3); left out: the template's default.")
    String enableThinking;

    @Override
    public Integer call() {
        if (maxNew < 1) {
            throw new BadInput("--max-new must be >= 1, got " + maxNew);
        }
        checkpoint = Checkpoints.resolve(checkpoint);
        Optional<Tokenizer> tok = Tokenizers.maybeFromCheckpoint(checkpoint);
        Optional<ChatFormat> chat;
        try {
            // a prompt given on the command line is raw unless asked otherwise: auto leaves it as it is
            chat = ChatFormat.choose(ChatFormat.Mode.parse(chatTemplate), checkpoint, false, systemPrompt,
                    ChatFormat.parseThinking(enableThinking));
        } catch (IllegalArgumentException e) {
            throw BadInput.flagged(e, List.of("chat-template", "system-prompt", "enable-thinking"));
        }
        if (chat.isPresent() && prompt.text == null) {
            throw new BadInput("--chat-template: on renders a --prompt text; --prompt-ids are used as they are");
        }
        int[] ids;
        if (prompt.text != null) {
            Tokenizer t = tok.orElseThrow(() -> new BadInput(checkpoint + ": no tokenizer.json; use --prompt-ids"));
            ids = chat.isPresent() ? chat.get().promptIds(t, prompt.text) : t.encode(prompt.text);
        } else {
            ids = prompt.ids;
        }
        if (ids.length == 0) {
            throw new BadInput("the prompt is empty");
        }
        try (Qwen3Model model = GenerationModels.open(checkpoint, Devices.parse(common.device()))) {
            for (int id : ids) {
                if (id < 0 || id >= model.config().vocabSize()) {
                    throw new BadInput("--prompt-ids: token id " + id + " outside vocabulary [0, " + model.config().vocabSize() + ")");
                }
            }
            Set<Integer> stops = new HashSet<>();
            if (stopIds != null) {
                for (int s : stopIds) {
                    if (s < 0 || s >= model.config().vocabSize()) {
                        throw new BadInput("--stop-ids: token id " + s + " outside vocabulary [0, " + model.config().vocabSize() + ")");
                    }
                    stops.add(s);
                }
            } else if (model.config().eosTokenId() >= 0) {
                stops.add(model.config().eosTokenId());
            }
            if (stopIds == null && chat.isPresent()) {
                stops.addAll(chat.get().stopIds(tok.get()));
            }
            GenerationResult r = new Generator(model).generate(new GenerationRequest(List.of(ids), maxNew,
                    new SamplingParams(temperature, topP, topK, seed), stops, topLogprobs));
            Generated g = r.sequences().get(0);
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("prompt_ids", g.promptIds());
            out.put("output_ids", g.outputIds());
            out.put("logprobs", g.logprobs());
            if (topLogprobs > 0) {
                out.put("top_ids", g.topIds());
                out.put("top_logprobs", g.topLogprobs());
            }
            out.put("finish_reason", g.finishReason());
            tok.ifPresent(t -> out.put("text", t.decode(g.outputIds())));
            if (common.json) {
                Json.print(out);
            } else {
                System.out.println(tok.map(t -> t.decode(g.outputIds())).orElse(java.util.Arrays.toString(g.outputIds())));
            }
        }
        return 0;
    }
}
