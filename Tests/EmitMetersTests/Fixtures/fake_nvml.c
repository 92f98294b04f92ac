/* A stand-in for libnvidia-ml.so.1 with NVML's C ABI, for tests on machines without GPUs.
 * State is read from files under $FAKE_NVML_DIR on every call, so a metered command can change
 * it mid-run:
 *   count                  number of GPUs
 *   gpuN/uuid, gpuN/name   identity
 *   gpuN/energy_mj         total energy counter (absent: NVML_ERROR_NOT_SUPPORTED, as pre-Volta)
 *   gpuN/power_mw          power reading (absent: NVML_ERROR_NOT_SUPPORTED)
 *   gpuN/lost              present: NVML_ERROR_GPU_IS_LOST
 *   init_fail              present: nvmlInit_v2 fails with NVML_ERROR_DRIVER_NOT_LOADED
 * With FAKE_NVML_ADVANCE_MJ=N in the environment, each energy read returns N mJ more than the
 * last (a counter that moves at every read, as a busy board's does) without another file read.
 * With FAKE_NVML_WATTS=W, each energy read adds W x the wall-clock milliseconds since the epoch
 * (mJ): a board drawing W watts, whose counter goes on while no process watches it.
 * Only the getters emit uses exist here: there is no setter to call. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef int nvmlReturn_t;
typedef void *nvmlDevice_t;
enum { SUCCESS = 0, INVALID_ARGUMENT = 2, NOT_SUPPORTED = 3, INSUFFICIENT_SIZE = 7, DRIVER_NOT_LOADED = 9, GPU_IS_LOST = 15 };

static int read_text(const char *rel, char *out, size_t size) {
    const char *dir = getenv("FAKE_NVML_DIR");
    char path[4096];
    if (!dir) return -1;
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(out, 1, size - 1, f);
    fclose(f);
    out[n] = 0;
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' ')) out[--n] = 0;
    return 0;
}

static int exists(const char *rel) {
    char buf[8];
    return read_text(rel, buf, sizeof buf) == 0;
}

static unsigned index_of(nvmlDevice_t device) { return (unsigned)((uintptr_t)device - 1); }

nvmlReturn_t nvmlInit_v2(void) { return exists("init_fail") ? DRIVER_NOT_LOADED : SUCCESS; }
nvmlReturn_t nvmlShutdown(void) { return SUCCESS; }

const char *nvmlErrorString(nvmlReturn_t result) {
    switch (result) {
    case SUCCESS: return "Success";
    case NOT_SUPPORTED: return "Not Supported";
    case DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case GPU_IS_LOST: return "GPU is lost";
    default: return "Unknown Error";
    }
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
    char buf[32];
    if (read_text("count", buf, sizeof buf) != 0) { *count = 0; return SUCCESS; }
    *count = (unsigned)strtoul(buf, NULL, 10);
    return SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    *device = (nvmlDevice_t)(uintptr_t)(index + 1);
    return SUCCESS;
}

static nvmlReturn_t string_field(nvmlDevice_t device, const char *field, char *out, unsigned int length) {
    char rel[64], buf[256];
    snprintf(rel, sizeof rel, "gpu%u/%s", index_of(device), field);
    if (read_text(rel, buf, sizeof buf) != 0) return NOT_SUPPORTED;
    if (strlen(buf) + 1 > length) return INSUFFICIENT_SIZE;
    strcpy(out, buf);
    return SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) { return string_field(device, "uuid", uuid, length); }
nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) { return string_field(device, "name", name, length); }

static nvmlReturn_t number_field(nvmlDevice_t device, const char *field, unsigned long long *value) {
    char rel[64], buf[64];
    snprintf(rel, sizeof rel, "gpu%u/lost", index_of(device));
    if (exists(rel)) return GPU_IS_LOST;
    snprintf(rel, sizeof rel, "gpu%u/%s", index_of(device), field);
    if (read_text(rel, buf, sizeof buf) != 0) return NOT_SUPPORTED;
    *value = strtoull(buf, NULL, 10);
    return SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device, unsigned long long *energy) {
    static unsigned long long advanced[64];
    nvmlReturn_t r = number_field(device, "energy_mj", energy);
    const char *step = getenv("FAKE_NVML_ADVANCE_MJ");
    unsigned i = index_of(device);
    if (r == SUCCESS && step && i < 64) {
        advanced[i] += strtoull(step, NULL, 10);
        *energy += advanced[i];
    }
    const char *watts = getenv("FAKE_NVML_WATTS");
    if (r == SUCCESS && watts) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        unsigned long long ms = (unsigned long long)now.tv_sec * 1000ULL + (unsigned long long)now.tv_nsec / 1000000ULL;
        *energy += strtoull(watts, NULL, 10) * ms;
    }
    return r;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power) {
    unsigned long long value = 0;
    nvmlReturn_t r = number_field(device, "power_mw", &value);
    if (r == SUCCESS) *power = (unsigned)value;
    return r;
}
