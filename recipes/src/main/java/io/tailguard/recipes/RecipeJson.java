package io.tailguard.recipes;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;

/**
 * The JSON the recipes write into checkpoints (pretrain.json) and hash (a pretraining recipe's
 * hash names the embedded default's cache directory): the same settings as the command line's
 * --json output, so a recipe's text, and so its hash, does not depend on who writes it.
 */
final class RecipeJson {
    private static final Gson GSON = new GsonBuilder().serializeSpecialFloatingPointValues().disableHtmlEscaping().create();

    private RecipeJson() {
    }

    static String of(Object value) {
        return GSON.toJson(value);
    }
}
