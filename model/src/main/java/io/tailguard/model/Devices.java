package io.tailguard.model;

import ai.djl.Device;

/** Parses the device names a user writes: {@code cpu} or {@code gpu:N}. */
public final class Devices {
    private Devices() {}

    public static Device parse(String name) {
        if (name == null || name.equals("cpu")) {
            return Device.cpu();
        }
        if (name.matches("gpu:\\d+")) {
            return Device.gpu(Integer.parseInt(name.substring(4)));
        }
        throw new IllegalArgumentException("device must be 'cpu' or 'gpu:N', got '" + name + "'");
    }
}
