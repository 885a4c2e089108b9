// The one zod product code imports: zod/mini, whose schemas are plain functions that a bundle
// keeps only when used (classic zod's methods bring its whole build, most of a cold start's module
// loading). Classic zod configures English messages for itself when loaded; zod/mini leaves every
// default message at "Invalid input", so this module configures the same English messages, once,
// for every schema, whichever function, CLI or script loads it.
import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';

z.config(en());

export * from 'zod/mini';
