/*
 * A fake NVML (libnvidia-ml.so.1) for tests on machines without a GPU.
 *
 * The tests load it through nvml-wrapper exactly as the real library is
 * loaded, so the FFI path (symbol names, signatures, struct layouts, error
 * codes) is exercised for real; only the numbers are scripted.
 *
 * Build: cc -shared -fPIC -O2 -o DIR/libnvidia-ml.so.1 fake_nvml.c
 *
 * The script is read by nvmlInit_v2/nvmlInitWithFlags from the file named by
 * $FAKE_NVML_SCRIPT (unset: a machine with no GPUs). Lines are `key = value`;
 * `#` starts a comment. An unknown key or a malformed value makes init fail
 * with NVML_ERROR_UNKNOWN and a message on stderr, so a typo in a test script
 * cannot silently turn into "not supported".
 *
 * Global keys: init (ok | driver_not_loaded | no_permission), driver_version,
 * cuda_driver_version, device_count (0..8).
 * Per-device keys, `gpuN.KEY` with N in 0..7: name, uuid, index,
 * memory_total_mib, memory_used_mib, memory_ramp_mib_per_s, util_gpu,
 * util_memory, power_mw, energy_start_mj, temperature_c, sm_clock_mhz,
 * throttle_reasons, power_limit_mw, persistence, mig, ecc, app_clock_sm_mhz,
 * default_app_clock_sm_mhz. Any per-device value may be `unsupported`; a
 * getter whose key is absent or `unsupported` returns NVML_ERROR_NOT_SUPPORTED
 * (name, uuid and index have defaults instead). Getters built from several keys:
 * memory info needs memory_total_mib (used and ramp default to 0); utilization
 * needs util_gpu and util_memory; total energy needs energy_start_mj (and only
 * grows when power_mw is set); both power limits read power_limit_mw; clock
 * getters answer for NVML_CLOCK_SM only.
 *
 * Every entry point except init, shutdown and nvmlErrorString counts one call
 * in fake_nvml_calls(), since the library was loaded into the process.
 *
 * Time is CLOCK_MONOTONIC seconds since the last successful init: memory used
 * grows by memory_ramp_mib_per_s per second (clamped to the total) and the
 * energy counter is energy_start_mj + power_mw * seconds.
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXPORT __attribute__((visibility("default")))

/* nvmlReturn_t values, as in nvml.h. */
enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NO_PERMISSION = 4,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
    NVML_ERROR_UNKNOWN = 999,
};
typedef int nvmlReturn_t;

/* nvmlClockType_t, nvmlTemperatureSensors_t, nvmlEnableState_t. */
enum { NVML_CLOCK_GRAPHICS = 0, NVML_CLOCK_SM = 1, NVML_CLOCK_MEM = 2, NVML_CLOCK_VIDEO = 3, NVML_CLOCK_COUNT = 4 };
enum { NVML_TEMPERATURE_GPU = 0, NVML_TEMPERATURE_COUNT = 1 };
typedef int nvmlEnableState_t;

typedef struct {
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_t;

typedef struct {
    unsigned int version;
    unsigned long long total;
    unsigned long long reserved;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_v2_t;

/* NVML_STRUCT_VERSION(Memory, 2), as nvml.h defines it. */
#define NVML_MEMORY_V2 ((unsigned int)(sizeof(nvmlMemory_v2_t) | (2u << 24)))

typedef struct {
    unsigned int gpu;
    unsigned int memory;
} nvmlUtilization_t;

#define MAX_DEVICES 8
#define MAX_STRING 96 /* NVML_DEVICE_NAME_V2_BUFFER_SIZE and NVML_DEVICE_UUID_V2_BUFFER_SIZE */
#define MIB 1048576ULL

/* How a scripted value stands: not in the script, `unsupported`, or set. */
enum { ABSENT = 0, UNSUPPORTED = 1, SET = 2 };

typedef struct {
    int state;
    unsigned long long value;
} field_t;

/* One fake GPU; the nvmlDevice_t handed out is a pointer to one of these. */
typedef struct nvmlDevice_st {
    int name_state;
    char name[MAX_STRING];
    int uuid_state;
    char uuid[MAX_STRING];
    field_t index;
    field_t memory_total_mib, memory_used_mib, memory_ramp_mib_per_s;
    field_t util_gpu, util_memory;
    field_t power_mw, energy_start_mj;
    field_t temperature_c, sm_clock_mhz, throttle_reasons, power_limit_mw;
    field_t persistence, mig, ecc;
    field_t app_clock_sm_mhz, default_app_clock_sm_mhz;
} fake_device;
typedef fake_device *nvmlDevice_t;

static const struct {
    const char *key;
    size_t offset;
} FIELD_KEYS[] = {
#define F(name) {#name, offsetof(fake_device, name)}
    F(index),          F(memory_total_mib), F(memory_used_mib),  F(memory_ramp_mib_per_s),    F(util_gpu),
    F(util_memory),    F(power_mw),         F(energy_start_mj),  F(temperature_c),            F(sm_clock_mhz),
    F(throttle_reasons), F(power_limit_mw), F(persistence),      F(mig),                      F(ecc),
    F(app_clock_sm_mhz), F(default_app_clock_sm_mhz),
#undef F
};

/* Everything a script sets; loaded into a staging copy so a failed init leaves the live one alone. */
typedef struct {
    char driver_version[MAX_STRING];
    int cuda_driver_version;
    unsigned device_count;
    fake_device devices[MAX_DEVICES];
} fake_state;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned init_refcount;
static struct timespec init_time;
static fake_state live, staged;
static atomic_ullong calls;

EXPORT unsigned long long fake_nvml_calls(void) { return atomic_load(&calls); }

/* ---- script parsing ---------------------------------------------------- */

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1])) end--;
    *end = '\0';
    return s;
}

static int parse_u64(const char *text, unsigned long long *out) {
    if (*text == '\0' || *text == '-') return 0;
    char *end;
    errno = 0;
    /* Decimal, or hex with 0x (handy for throttle_reasons); never octal. */
    int hex = text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
    const char *digits = hex ? text + 2 : text;
    if (!isxdigit((unsigned char)*digits)) return 0;
    unsigned long long value = strtoull(digits, &end, hex ? 16 : 10);
    if (errno != 0 || *end != '\0') return 0;
    *out = value;
    return 1;
}

static int copy_string(char *dst, const char *src) {
    if (strlen(src) >= MAX_STRING) return 0;
    strcpy(dst, src);
    return 1;
}

static void reset_state(fake_state *st) {
    memset(st, 0, sizeof *st);
    strcpy(st->driver_version, "550.54.15");
    st->cuda_driver_version = 12040;
    for (unsigned i = 0; i < MAX_DEVICES; i++) {
        fake_device *dev = &st->devices[i];
        snprintf(dev->name, MAX_STRING, "Fake GPU %u", i);
        snprintf(dev->uuid, MAX_STRING, "GPU-fake-%u", i);
        dev->name_state = SET;
        dev->uuid_state = SET;
        dev->index.state = SET;
        dev->index.value = i;
    }
}

/* Applies one `gpuN.KEY = value` line; returns 0 when the key or value is bad. */
static int apply_device_key(fake_device *dev, const char *key, const char *value) {
    int unsupported = strcmp(value, "unsupported") == 0;
    if (strcmp(key, "name") == 0 || strcmp(key, "uuid") == 0) {
        int is_name = key[0] == 'n';
        int *state = is_name ? &dev->name_state : &dev->uuid_state;
        *state = unsupported ? UNSUPPORTED : SET;
        return unsupported || copy_string(is_name ? dev->name : dev->uuid, value);
    }
    for (size_t k = 0; k < sizeof FIELD_KEYS / sizeof FIELD_KEYS[0]; k++) {
        if (strcmp(key, FIELD_KEYS[k].key) != 0) continue;
        field_t *field = (field_t *)((char *)dev + FIELD_KEYS[k].offset);
        if (unsupported) {
            field->state = UNSUPPORTED;
            return 1;
        }
        field->state = SET;
        return parse_u64(value, &field->value);
    }
    return 0;
}

/* Reads the script into `st`; returns the nvmlInit result it asks for. Called with the lock held. */
static nvmlReturn_t load_script(fake_state *st) {
    reset_state(st);
    const char *path = getenv("FAKE_NVML_SCRIPT");
    if (path == NULL || *path == '\0') return NVML_SUCCESS;
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        fprintf(stderr, "fake_nvml: cannot read FAKE_NVML_SCRIPT=%s (%s); no devices\n", path, strerror(errno));
        return NVML_SUCCESS;
    }
    nvmlReturn_t result = NVML_SUCCESS;
    char buf[512];
    unsigned line_no = 0;
    while (fgets(buf, sizeof buf, file) != NULL) {
        line_no++;
        char *hash = strchr(buf, '#');
        if (hash != NULL) *hash = '\0';
        char *line = trim(buf);
        if (*line == '\0') continue;
        char whole[sizeof buf];
        strcpy(whole, line);
        char *eq = strchr(line, '=');
        if (eq == NULL) goto bad;
        *eq = '\0';
        char *key = trim(line);
        char *value = trim(eq + 1);
        unsigned long long number;
        if (strcmp(key, "init") == 0) {
            if (strcmp(value, "ok") == 0) result = NVML_SUCCESS;
            else if (strcmp(value, "driver_not_loaded") == 0) result = NVML_ERROR_DRIVER_NOT_LOADED;
            else if (strcmp(value, "no_permission") == 0) result = NVML_ERROR_NO_PERMISSION;
            else goto bad;
        } else if (strcmp(key, "driver_version") == 0) {
            if (!copy_string(st->driver_version, value)) goto bad;
        } else if (strcmp(key, "cuda_driver_version") == 0) {
            if (!parse_u64(value, &number) || number > 0x7fffffff) goto bad;
            st->cuda_driver_version = (int)number;
        } else if (strcmp(key, "device_count") == 0) {
            if (!parse_u64(value, &number) || number > MAX_DEVICES) goto bad;
            st->device_count = (unsigned)number;
        } else if (strncmp(key, "gpu", 3) == 0 && key[3] >= '0' && key[3] < '0' + MAX_DEVICES && key[4] == '.') {
            if (!apply_device_key(&st->devices[key[3] - '0'], key + 5, value)) goto bad;
        } else {
            goto bad;
        }
        continue;
    bad:
        fprintf(stderr, "fake_nvml: %s:%u: unknown key or bad value: %s\n", path, line_no, whole);
        result = NVML_ERROR_UNKNOWN;
        break;
    }
    fclose(file);
    return result;
}

/* ---- helpers for the getters ------------------------------------------- */

static double seconds_since_init(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - init_time.tv_sec) + (double)(now.tv_nsec - init_time.tv_nsec) / 1e9;
}

/* Every getter starts here: counts the call and takes the lock. */
#define ENTER()                                                                                                       \
    atomic_fetch_add(&calls, 1);                                                                                      \
    pthread_mutex_lock(&lock);                                                                                        \
    nvmlReturn_t ret_ = NVML_SUCCESS;                                                                                 \
    if (init_refcount == 0) {                                                                                         \
        ret_ = NVML_ERROR_UNINITIALIZED;                                                                              \
        goto out_;                                                                                                    \
    }

#define FAIL(code)                                                                                                    \
    do {                                                                                                              \
        ret_ = (code);                                                                                                \
        goto out_;                                                                                                    \
    } while (0)

#define LEAVE()                                                                                                       \
    out_:                                                                                                             \
    pthread_mutex_unlock(&lock);                                                                                      \
    return ret_;

/* An argument that must be a handle to one of the present devices. */
#define CHECK_DEVICE(dev)                                                                                             \
    if (!is_present_device(dev)) FAIL(NVML_ERROR_INVALID_ARGUMENT)

#define CHECK_FIELD(field)                                                                                            \
    if ((field).state != SET) FAIL(NVML_ERROR_NOT_SUPPORTED)

/* Compared as integers: a stray pointer must not be compared with `<` against an unrelated array. */
static int is_present_device(const fake_device *dev) {
    uintptr_t p = (uintptr_t)dev, first = (uintptr_t)&live.devices[0];
    return p >= first && p < first + live.device_count * sizeof(fake_device) && (p - first) % sizeof(fake_device) == 0;
}

static nvmlReturn_t copy_out(char *dst, unsigned length, const char *src) {
    if (strlen(src) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(dst, src);
    return NVML_SUCCESS;
}

/* Memory used now, in bytes, or NOT_SUPPORTED. Called with the lock held. */
static nvmlReturn_t memory_now(const fake_device *dev, unsigned long long *total, unsigned long long *used) {
    if (dev->memory_total_mib.state != SET || dev->memory_used_mib.state == UNSUPPORTED ||
        dev->memory_ramp_mib_per_s.state == UNSUPPORTED)
        return NVML_ERROR_NOT_SUPPORTED;
    double used_mib = (double)dev->memory_used_mib.value;
    if (dev->memory_ramp_mib_per_s.state == SET)
        used_mib += (double)dev->memory_ramp_mib_per_s.value * seconds_since_init();
    *total = dev->memory_total_mib.value * MIB;
    double used_bytes = used_mib * (double)MIB;
    *used = used_bytes >= (double)*total ? *total : (unsigned long long)used_bytes;
    return NVML_SUCCESS;
}

/* ---- library lifetime --------------------------------------------------- */

static nvmlReturn_t do_init(void) {
    pthread_mutex_lock(&lock);
    nvmlReturn_t ret = load_script(&staged);
    if (ret == NVML_SUCCESS) {
        live = staged;
        init_refcount++;
        clock_gettime(CLOCK_MONOTONIC, &init_time);
    }
    pthread_mutex_unlock(&lock);
    return ret;
}

EXPORT nvmlReturn_t nvmlInit_v2(void) { return do_init(); }

EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    return do_init();
}

EXPORT nvmlReturn_t nvmlShutdown(void) {
    pthread_mutex_lock(&lock);
    nvmlReturn_t ret = NVML_SUCCESS;
    if (init_refcount == 0) ret = NVML_ERROR_UNINITIALIZED;
    else init_refcount--;
    pthread_mutex_unlock(&lock);
    return ret;
}

EXPORT const char *nvmlErrorString(nvmlReturn_t result) {
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument version mismatch";
    case NVML_ERROR_UNKNOWN: return "Unknown Error";
    default: return "Unknown Error";
    }
}

/* ---- system queries ------------------------------------------------------ */

EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    ENTER();
    if (version == NULL) FAIL(NVML_ERROR_INVALID_ARGUMENT);
    ret_ = copy_out(version, length, live.driver_version);
    LEAVE();
}

EXPORT nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length) {
    ENTER();
    if (version == NULL) FAIL(NVML_ERROR_INVALID_ARGUMENT);
    /* Real NVML reports "<CUDA major>.<driver version>", e.g. "12.550.54.15". */
    char text[2 * MAX_STRING];
    snprintf(text, sizeof text, "%d.%s", live.cuda_driver_version / 1000, live.driver_version);
    ret_ = copy_out(version, length, text);
    LEAVE();
}

EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *version) {
    ENTER();
    if (version == NULL) FAIL(NVML_ERROR_INVALID_ARGUMENT);
    *version = live.cuda_driver_version;
    LEAVE();
}

EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *version) { return nvmlSystemGetCudaDriverVersion_v2(version); }

/* ---- device enumeration ------------------------------------------------- */

EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
    ENTER();
    if (count == NULL) FAIL(NVML_ERROR_INVALID_ARGUMENT);
    *count = live.device_count;
    LEAVE();
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    ENTER();
    if (device == NULL || index >= live.device_count) FAIL(NVML_ERROR_INVALID_ARGUMENT);
    *device = &live.devices[index];
    LEAVE();
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device) {
    ENTER();
    if (uuid == NULL || device == NULL) FAIL(NVML_ERROR_INVALID_ARGUMENT);
    for (unsigned i = 0; i < live.device_count; i++) {
        if (live.devices[i].uuid_state == SET && strcmp(live.devices[i].uuid, uuid) == 0) {
            *device = &live.devices[i];
            goto out_;
        }
    }
    ret_ = NVML_ERROR_NOT_FOUND;
    LEAVE();
}

EXPORT nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index) {
    ENTER();
    CHECK_DEVICE(device);
    if (index == NULL) FAIL(NVML_ERROR_INVALID_ARGUMENT);
    CHECK_FIELD(device->index);
    *index = (unsigned int)device->index.value;
    LEAVE();
}

EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
    ENTER();
    CHECK_DEVICE(device);
    if (name == NULL) FAIL(NVML_ERROR_INVALID_ARGUMENT);
    if (device->name_state != SET) FAIL(NVML_ERROR_NOT_SUPPORTED);
    ret_ = copy_out(name, length, device->name);
    LEAVE();
}

EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) {
    ENTER();
    CHECK_DEVICE(device);
    if (uuid == NULL) FAIL(NVML_ERROR_INVALID_ARGUMENT);
    if (device->uuid_state != SET) FAIL(NVML_ERROR_NOT_SUPPORTED);
    ret_ = copy_out(uuid, length, device->uuid);
    LEAVE();
}

/* ---- device samples ------------------------------------------------------ */

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory) {
    ENTER();
    CHECK_DEVICE(device);
    if (memory == NULL) FAIL(NVML_ERROR_INVALID_ARGUMENT);
    unsigned long long total, used;
    ret_ = memory_now(device, &total, &used);
    if (ret_ != NVML_SUCCESS) goto out_;
    memory->total = total;
    memory->used = used;
    memory->free = total - used;
    LEAVE();
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory) {
    ENTER();
    CHECK_DEVICE(device);
    if (memory == NULL) FAIL(NVML_ERROR_INVALID_ARGUMENT);
    if (memory->version != NVML_MEMORY_V2) FAIL(NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
    unsigned long long total, used;
    ret_ = memory_now(device, &total, &used);
    if (ret_ != NVML_SUCCESS) goto out_;
    memory->total = total;
    memory->reserved = 0;
    memory->used = used;
    memory->free = total - used;
    LEAVE();
}

EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *utilization) {
    ENTER();
    CHECK_DEVICE(device);
    if (utilization == NULL) FAIL(NVML_ERROR_INVALID_ARGUMENT);
    CHECK_FIELD(device->util_gpu);
    CHECK_FIELD(device->util_memory);
    utilization->gpu = (unsigned int)device->util_gpu.value;
    utilization->memory = (unsigned int)device->util_memory.value;
    LEAVE();
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power) {
    ENTER();
    CHECK_DEVICE(device);
    if (power == NULL) FAIL(NVML_ERROR_INVALID_ARGUMENT);
    CHECK_FIELD(device->power_mw);
    *power = (unsigned int)device->power_mw.value;
    LEAVE();
}

EXPORT nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device, unsigned long long *energy) {
    ENTER();
    CHECK_DEVICE(device);
    if (energy == NULL) FAIL(NVML_ERROR_INVALID_ARGUMENT);
    CHECK_FIELD(device->energy_start_mj);
    /* The counter integrates power; without a scripted power it stands still. */
    double mj = (double)device->energy_start_mj.value;
    if (device->power_mw.state == SET) mj += (double)device->power_mw.value * seconds_since_init();
    *energy = (unsigned long long)mj;
    LEAVE();
}

EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, int sensor, unsigned int *temp) {
    ENTER();
    CHECK_DEVICE(device);
    if (temp == NULL || sensor < 0 || sensor >= NVML_TEMPERATURE_COUNT) FAIL(NVML_ERROR_INVALID_ARGUMENT);
    CHECK_FIELD(device->temperature_c);
    *temp = (unsigned int)device->temperature_c.value;
    LEAVE();
}

/* Clock getters share this: only the SM clock is scripted. */
static nvmlReturn_t sm_clock(nvmlDevice_t device, int type, unsigned int *clock, size_t offset) {
    ENTER();
    CHECK_DEVICE(device);
    if (clock == NULL || type < 0 || type >= NVML_CLOCK_COUNT) FAIL(NVML_ERROR_INVALID_ARGUMENT);
    if (type != NVML_CLOCK_SM) FAIL(NVML_ERROR_NOT_SUPPORTED);
    const field_t *field = (const field_t *)((const char *)device + offset);
    CHECK_FIELD(*field);
    *clock = (unsigned int)field->value;
    LEAVE();
}

EXPORT nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t device, int type, unsigned int *clock) {
    return sm_clock(device, type, clock, offsetof(fake_device, sm_clock_mhz));
}

EXPORT nvmlReturn_t nvmlDeviceGetApplicationsClock(nvmlDevice_t device, int type, unsigned int *clock) {
    return sm_clock(device, type, clock, offsetof(fake_device, app_clock_sm_mhz));
}

EXPORT nvmlReturn_t nvmlDeviceGetDefaultApplicationsClock(nvmlDevice_t device, int type, unsigned int *clock) {
    return sm_clock(device, type, clock, offsetof(fake_device, default_app_clock_sm_mhz));
}

EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t device, unsigned long long *reasons) {
    ENTER();
    CHECK_DEVICE(device);
    if (reasons == NULL) FAIL(NVML_ERROR_INVALID_ARGUMENT);
    CHECK_FIELD(device->throttle_reasons);
    *reasons = device->throttle_reasons.value;
    LEAVE();
}

EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t device, unsigned long long *reasons) {
    return nvmlDeviceGetCurrentClocksEventReasons(device, reasons);
}

/* Both limits report the one scripted value. */
EXPORT nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int *limit) {
    ENTER();
    CHECK_DEVICE(device);
    if (limit == NULL) FAIL(NVML_ERROR_INVALID_ARGUMENT);
    CHECK_FIELD(device->power_limit_mw);
    *limit = (unsigned int)device->power_limit_mw.value;
    LEAVE();
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerManagementLimit(nvmlDevice_t device, unsigned int *limit) {
    return nvmlDeviceGetEnforcedPowerLimit(device, limit);
}

EXPORT nvmlReturn_t nvmlDeviceGetPersistenceMode(nvmlDevice_t device, nvmlEnableState_t *mode) {
    ENTER();
    CHECK_DEVICE(device);
    if (mode == NULL) FAIL(NVML_ERROR_INVALID_ARGUMENT);
    CHECK_FIELD(device->persistence);
    *mode = (nvmlEnableState_t)device->persistence.value;
    LEAVE();
}

/* Pending equals current: the fake never has a mode change waiting for a reboot. */
EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *current, unsigned int *pending) {
    ENTER();
    CHECK_DEVICE(device);
    if (current == NULL || pending == NULL) FAIL(NVML_ERROR_INVALID_ARGUMENT);
    CHECK_FIELD(device->mig);
    *current = (unsigned int)device->mig.value;
    *pending = (unsigned int)device->mig.value;
    LEAVE();
}

EXPORT nvmlReturn_t nvmlDeviceGetEccMode(nvmlDevice_t device, nvmlEnableState_t *current, nvmlEnableState_t *pending) {
    ENTER();
    CHECK_DEVICE(device);
    if (current == NULL || pending == NULL) FAIL(NVML_ERROR_INVALID_ARGUMENT);
    CHECK_FIELD(device->ecc);
    *current = (nvmlEnableState_t)device->ecc.value;
    *pending = (nvmlEnableState_t)device->ecc.value;
    LEAVE();
}
