"""Named device budgets for `rules.target`: the flash and RAM of common microcontroller parts, from their makers'
datasheets. A spec fits a target when its int8 model's weight buffers fit the part's flash and its TensorFlow Lite
Micro activation arena fits its RAM (SEP219); the program beside the model needs some of both too, which the rule
leaves to `max_flash_bytes` / `max_activation_bytes` where the margin matters."""

from __future__ import annotations

KB = 1024

# name -> (flash bytes, RAM bytes, the part and the source of its figures)
TARGETS = {
    "cortex-m0plus-rp2040": (2048 * KB, 264 * KB, "Raspberry Pi RP2040 (Cortex-M0+): 264 KB SRAM; 2 MB QSPI flash "
                             "on the Pico board (RP2040 datasheet, Pico datasheet)"),
    "cortex-m4-stm32f446": (512 * KB, 128 * KB, "ST STM32F446RE (Cortex-M4F, 180 MHz): 512 KB flash, 128 KB SRAM "
                            "(datasheet DS10693)"),
    "cortex-m4-nrf52840": (1024 * KB, 256 * KB, "Nordic nRF52840 (Cortex-M4F, 64 MHz; Arduino Nano 33 BLE): 1 MB "
                           "flash, 256 KB RAM (nRF52840 Product Specification)"),
    "cortex-m7-stm32f746": (1024 * KB, 320 * KB, "ST STM32F746NG (Cortex-M7, 216 MHz; the MLPerf Tiny reference "
                            "board's family): 1 MB flash, 320 KB SRAM (datasheet DS10916)"),
    "cortex-m7-stm32h743": (2048 * KB, 1024 * KB, "ST STM32H743ZI (Cortex-M7, 480 MHz): 2 MB flash, 1 MB SRAM "
                            "(datasheet DS12110)"),
    "esp32-s3": (8192 * KB, 512 * KB, "Espressif ESP32-S3 (Xtensa LX7): 512 KB SRAM; 8 MB flash on the "
                 "ESP32-S3-DevKitC-1 N8 (ESP32-S3 datasheet)"),
}
