// Imported first by scripts/bench/run.ts: the AWS SDK's Node-version notice is noise in bench output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
export {};
