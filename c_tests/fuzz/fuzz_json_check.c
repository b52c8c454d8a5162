/* libFuzzer target: capi/src/json_check.c alone (dyn_utf8_valid, dyn_json_valid_object) on arbitrary
 * bytes, embedded NULs included. Checks no read outside [data, data+size) (ASan), no UB (UBSan), no
 * unbounded recursion, and what a verdict implies: an accepted object starts with '{' and ends with
 * '}' after trailing whitespace, and holds no raw control byte outside whitespace. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    /* an exact-size heap copy: ASan flags a read one past the end */
    char* copy = malloc(size ? size : 1);
    FUZZ_CHECK(copy != NULL);
    memcpy(copy, data, size);
    (void)dyn_utf8_valid(copy, size);
    if (dyn_json_valid_object(copy, size)) {
        size_t i = 0, j = size;
        while (i < size && (copy[i] == ' ' || copy[i] == '\t' || copy[i] == '\n' || copy[i] == '\r')) i++;
        while (j > i && (copy[j - 1] == ' ' || copy[j - 1] == '\t' || copy[j - 1] == '\n' || copy[j - 1] == '\r')) j--;
        FUZZ_CHECK(i < j && copy[i] == '{' && copy[j - 1] == '}');
        for (size_t k = 0; k < size; k++)
            FUZZ_CHECK((unsigned char)copy[k] >= 0x20 || copy[k] == ' ' || copy[k] == '\t' || copy[k] == '\n' || copy[k] == '\r');
    }
    free(copy);
    return 0;
}
