// The AWS SDK warns that Node 20 support ends in 2027; it is noise in test output. (This is the variable
// @aws-sdk/core reads; the host itself prints the warning once.)
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
